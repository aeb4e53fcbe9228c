"""The shared label vectors (test/fixtures/label-vectors.json) through the trainer's labels.py; the
TypeScript side checks the same file against datasets/labels.ts (test/datasets/label-vectors.test.ts)."""
import json

import numpy as np
import pytest

from stageward_train.labels import AFTER_LAST_TAU, frame_labels, hop_target, validate_spans
from stageward_train.make_fixture import REPO_ROOT

VECTORS = json.loads((REPO_ROOT / "test" / "fixtures" / "label-vectors.json").read_text())
TOL = VECTORS["tolerance"]


def test_vectors_cover_the_edge_cases():
    assert len(VECTORS["cases"]) >= 8 and VECTORS["after_last_tau"] == AFTER_LAST_TAU


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["name"] for c in VECTORS["cases"]])
def test_labels_match_the_shared_vectors(case):
    got = frame_labels(case["spans"], case["length"], case["stages"], case["priors"], case["name"])
    want = case["expected"]
    assert got["stage"].tolist() == want["stage"]
    for key in ("tau", "progress_sarm", "progress_step"):
        assert got[key].dtype == np.float32
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=TOL, err_msg=key)


def test_hops_match_the_shared_vectors():
    for h in VECTORS["hops"]:
        assert abs(hop_target(h["before"], h["after"]) - h["hop"]) <= TOL, h
    before = np.array([h["before"] for h in VECTORS["hops"]])
    after = np.array([h["after"] for h in VECTORS["hops"]])
    np.testing.assert_allclose(hop_target(before, after), [h["hop"] for h in VECTORS["hops"]], atol=TOL)


@pytest.mark.parametrize("spans", [
    [], [("fly", 0, 3)], [("reach", 0, 10)], [("reach", -1, 3)], [("reach", 4, 3)],
    [("reach", 0, 5), ("grasp", 4, 8)], [("reach", 0.5, 3)],
])
def test_bad_annotations_fail_fast(spans):
    with pytest.raises(ValueError, match="ep 3"):
        validate_spans(spans, 10, ["reach", "grasp"], "ep 3")
