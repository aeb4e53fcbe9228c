"""ModelConfig refuses inconsistent settings at construction, naming the field."""
import json
from pathlib import Path

import pytest

from stageward_train.config import ModelConfig


def refusal(data) -> str:
    with pytest.raises(ValueError) as err:
        ModelConfig.from_dict(data)
    return str(err.value)


def test_dict_round_trip_and_derived_shapes(tiny_dict, tiny_cfg):
    assert ModelConfig.from_dict(tiny_cfg.to_dict()) == tiny_cfg
    assert tiny_cfg.to_dict() == tiny_dict
    assert tiny_cfg.num_stages == 7 and tiny_cfg.stage_counts() == [5, 7] and tiny_cfg.num_views == 3


def test_bundled_default_config_is_valid():
    path = Path(__file__).resolve().parents[1] / "configs" / "default.json"
    cfg = ModelConfig.from_dict(json.loads(path.read_text()))
    assert (cfg.image.height, cfg.feature_dim, cfg.window.length, cfg.num_stages) == (96, 128, 9, 7)


def test_priors_not_summing_to_one_are_refused(tiny_dict):
    tiny_dict["stages"]["pick_place"][0]["prior"] = 0.5
    assert refusal(tiny_dict).startswith("stages.pick_place[*].prior: priors must sum to 1")


def test_priors_within_tolerance_are_accepted(tiny_dict):
    tiny_dict["stages"]["pick_place"][0]["prior"] += 0.0009
    ModelConfig.from_dict(tiny_dict)


def test_zero_prior_is_refused(tiny_dict):
    tiny_dict["stages"]["pick_place"] = [{"name": "a", "prior": 0.0}, {"name": "b", "prior": 1.0}]
    assert refusal(tiny_dict).startswith("stages.pick_place[0].prior")


def test_empty_and_duplicate_views_are_refused(tiny_dict):
    tiny_dict["views"] = []
    assert refusal(tiny_dict).startswith("views:")
    tiny_dict["views"] = ["front", "front"]
    assert "repeated" in refusal(tiny_dict)


def test_stages_must_cover_exactly_the_tasks(tiny_dict):
    tiny_dict["tasks"] = ["pick_place", "stack_three", "open_drawer"]
    assert refusal(tiny_dict).startswith("stages: no stages for task(s) ['open_drawer']")
    tiny_dict["tasks"] = ["pick_place"]
    assert refusal(tiny_dict).startswith("stages: stages for unknown task(s) ['stack_three']")


def test_duplicate_stage_names_are_refused(tiny_dict):
    tiny_dict["stages"]["pick_place"][1]["name"] = "reach"
    assert refusal(tiny_dict).startswith("stages.pick_place[*].name")


@pytest.mark.parametrize("path,value,field", [
    (("image", "resize"), "zoom", "image.resize"),
    (("image", "height"), 0, "image.height"),
    (("window", "length"), 1, "window.length"),  # include_initial needs slot 0 and the last slot
    (("window", "stride_frames"), 0, "window.stride_frames"),
    (("architecture", "heads"), 3, "architecture.heads"),  # d_model 32 not divisible by 3
    (("architecture", "encoder_channels"), [8] * 7, "architecture.encoder_channels"),  # 64 px < 2**7
    (("architecture", "backbone"), "vit_b_16", "architecture.backbone"),
    (("architecture", "backbone_weights"), "random", "architecture.backbone_weights"),  # only with a backbone
    (("progress", "composition"), "mean", "progress.composition"),
    (("grm", "goal"), "server", "grm.goal"),
    (("name",), "Tiny Model", "name"),
    (("fps",), 0, "fps"),
    (("feature_dim",), -4, "feature_dim"),
])
def test_bad_fields_are_refused_by_name(tiny_dict, path, value, field):
    target = tiny_dict
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert refusal(tiny_dict).startswith(field + ":")


def test_absent_grm_needs_goal_none(tiny_dict):
    tiny_dict["grm"] = {"present": False, "goal": "client"}
    assert refusal(tiny_dict).startswith("grm.goal:")
    tiny_dict["grm"]["goal"] = "none"
    assert not ModelConfig.from_dict(tiny_dict).grm_present


def test_unknown_and_missing_fields_are_refused(tiny_dict):
    tiny_dict["windows"] = tiny_dict["window"]
    assert "unknown field(s) ['windows']" in refusal(tiny_dict)
    del tiny_dict["windows"], tiny_dict["window"]
    assert "missing field(s) ['window']" in refusal(tiny_dict)
    tiny_dict["window"] = {"length": 5, "stride": 2, "include_initial": True}
    assert refusal(tiny_dict).startswith("window:")


def test_instructions_reach_the_card_and_name_only_known_tasks(tiny_dict):
    from stageward_train.card import build_card, validate_card
    d = dict(tiny_dict, instructions={"pick_place": ["put the red cube in the blue bowl", "cube in bowl"]})
    cfg = ModelConfig.from_dict(d)
    card = build_card(cfg)
    assert card["instructions"] == {"pick_place": ["put the red cube in the blue bowl", "cube in bowl"]}
    assert list(card).index("instructions") == list(card).index("tasks") + 1
    assert validate_card(card).instructions == cfg.instructions
    bare = {k: v for k, v in tiny_dict.items() if k != "instructions"}
    assert "instructions" not in build_card(ModelConfig.from_dict(bare))  # optional: absent stays absent
    with pytest.raises(ValueError, match="instructions.stack_nine"):
        ModelConfig.from_dict(dict(tiny_dict, instructions={"stack_nine": ["x"]}))
    with pytest.raises(ValueError, match=r"instructions.pick_place"):
        ModelConfig.from_dict(dict(tiny_dict, instructions={"pick_place": []}))


def test_missing_views_fill_reaches_the_card_and_is_checked(tiny_dict):
    from stageward_train.card import build_card, validate_card
    cfg = ModelConfig.from_dict(dict(tiny_dict, missing_views={"fill": "black"}))
    card = build_card(cfg)
    assert card["missing_views"] == {"fill": "black"}
    assert validate_card(card).missing_view_fill == "black"
    assert "missing_views" not in build_card(ModelConfig.from_dict(tiny_dict))
    assert refusal(dict(tiny_dict, missing_views={"fill": "grey"})).startswith("missing_views.fill")


def test_backbone_fields_are_written_only_with_a_torchvision_backbone(tiny_dict, tiny_cfg):
    assert "backbone" not in tiny_cfg.to_dict()["architecture"]
    tiny_dict["architecture"]["backbone"] = "resnet18"
    cfg = ModelConfig.from_dict(tiny_dict)
    arch = cfg.to_dict()["architecture"]
    assert (arch["backbone"], arch["backbone_weights"]) == ("resnet18", "pretrained")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    # the conv stack's image-size rule does not apply to a backbone, its own does
    tiny_dict["architecture"]["encoder_channels"] = [8] * 7
    ModelConfig.from_dict(tiny_dict)
    tiny_dict["image"]["width"] = 31
    assert refusal(tiny_dict).startswith("architecture.backbone:")
