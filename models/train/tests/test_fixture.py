"""make_fixture is deterministic and the committed test/fixtures match what it writes now."""
import json
from pathlib import Path

import numpy as np
import pytest

from stageward_train.make_fixture import REPO_ROOT, make_fixtures

COMMITTED = REPO_ROOT / "test" / "fixtures"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    out = tmp_path_factory.mktemp("fixtures")
    make_fixtures(out)
    return out


def test_fixture_package_and_arrays_are_reproducible(fresh, tmp_path):
    make_fixtures(tmp_path)
    assert (tmp_path / "tiny-model" / "model.json").read_bytes() == \
        (fresh / "tiny-model" / "model.json").read_bytes()
    for npy in sorted((fresh / "parity").glob("*.npy")):
        assert (tmp_path / "parity" / npy.name).read_bytes() == npy.read_bytes(), npy.name


def test_manifest_describes_every_array(fresh):
    manifest = json.loads((fresh / "parity" / "manifest.json").read_text())
    assert manifest["model"] == "../tiny-model" and manifest["task_index"] == 1
    files = sorted(p.name for p in (fresh / "parity").glob("*.npy"))
    assert sorted(a["file"] for a in manifest["arrays"].values()) == files
    for name, spec in manifest["arrays"].items():
        arr = np.load(fresh / "parity" / spec["file"])
        assert arr.dtype.str in ("<f4", "|u1", "<i8") and arr.flags.c_contiguous
        assert (str(arr.dtype), list(arr.shape)) == (spec["dtype"], spec["shape"]), name
    valid = np.load(fresh / "parity" / "sarm_valid.npy")
    feats = np.load(fresh / "parity" / "sarm_features.npy")
    assert (feats[valid == 0] == 0).all() and (valid == 0).any()
    assert sum(p.stat().st_size for p in fresh.rglob("*") if p.is_file()) < 2_000_000
    assert sum(p.stat().st_size for p in (fresh / "tiny-model").iterdir()) < 1_000_000


def test_committed_fixtures_are_up_to_date(fresh):
    assert (COMMITTED / "parity" / "manifest.json").exists(), "test/fixtures missing: run stageward_train.make_fixture"
    assert (COMMITTED / "tiny-model" / "model.json").read_text() == \
        (fresh / "tiny-model" / "model.json").read_text(), "re-run stageward_train.make_fixture"
    for npy in sorted((fresh / "parity").glob("*.npy")):
        want, got = np.load(npy), np.load(COMMITTED / "parity" / npy.name)
        assert want.dtype == got.dtype and want.shape == got.shape, npy.name
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=npy.name)
