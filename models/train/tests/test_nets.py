"""Network behaviour the serving side relies on: shapes, stage masking, padding, GRM range."""
import pytest
import torch

from stageward_train.nets import MASKED_LOGIT, FrameEncoder, GrmHead, SarmHead


def sarm_inputs(cfg, batch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    t, v, d = cfg.window.length, cfg.num_views, cfg.feature_dim
    feats = torch.randn(batch, t, v, d, generator=gen)
    valid = torch.ones(batch, t)
    valid[1::2, 1:3] = 0  # every other row pads slots 1-2
    return feats * valid[:, :, None, None], valid


def test_encoder_maps_uint8_frames_to_features(tiny_cfg):
    torch.manual_seed(0)
    enc = FrameEncoder(tiny_cfg).eval()
    pixels = torch.randint(0, 256, (4, 64, 64, 3), dtype=torch.uint8)
    out = enc(pixels)
    assert out.shape == (4, 32) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v3_small", "efficientnet_b0"])
def test_encoder_with_a_frozen_backbone_keeps_the_interface(tiny_dict, backbone):
    pytest.importorskip("torchvision")
    from stageward_train.config import ModelConfig
    tiny_dict["architecture"].update(backbone=backbone, backbone_weights="random")
    torch.manual_seed(0)
    enc = FrameEncoder(ModelConfig.from_dict(tiny_dict)).train()
    out = enc(torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8))
    assert out.shape == (3, 32) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (enc.map_h, enc.map_w) == (4, 4)  # cut after a 16x downsampling
    trainable = {n.split(".")[0] for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == {"convs", "log_temperature", "out"} and not enc.backbone.training


def test_default_encoder_has_no_backbone(tiny_cfg):
    enc = FrameEncoder(tiny_cfg)
    assert enc.backbone is None and not any(k.startswith("backbone") for k in enc.state_dict())


def test_sarm_never_picks_a_stage_the_task_lacks_even_with_adversarial_weights(tiny_cfg):
    torch.manual_seed(0)
    head = SarmHead(tiny_cfg).eval()
    with torch.no_grad():
        head.stage.bias[5:] = 1e6  # stages 5 and 6 exist only for stack_three (7 stages)
        head.stage.weight.mul_(10.0)
    feats, valid = sarm_inputs(tiny_cfg, 8)
    logits, _ = head(feats, valid, torch.zeros(8, dtype=torch.int64))  # pick_place: 5 stages
    assert (logits.argmax(-1) < 5).all()
    assert (logits[:, 5:] == MASKED_LOGIT).all() and (logits[:, :5] > MASKED_LOGIT).all()
    logits, _ = head(feats, valid, torch.ones(8, dtype=torch.int64))
    assert (logits.argmax(-1) >= 5).all()  # the same weights pick them where the task has them


def test_sarm_outputs_ignore_whatever_sits_in_padded_slots(tiny_cfg):
    torch.manual_seed(0)
    head = SarmHead(tiny_cfg).eval()
    feats, valid = sarm_inputs(tiny_cfg, 6)
    task = torch.tensor([0, 1, 0, 1, 0, 1])
    noisy = feats + 50.0 * torch.randn_like(feats) * (1 - valid)[:, :, None, None]
    assert not torch.equal(noisy, feats)
    a, b = head(feats, valid, task), head(noisy, valid, task)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(a[1], b[1], rtol=0, atol=1e-6)
    c = head(noisy, torch.ones_like(valid), task)  # the same slots, unmasked, do matter
    assert not torch.allclose(a[0][1::2], c[0][1::2], atol=1e-4)


def test_sarm_stage_hint_replaces_the_predicted_stage_for_tau(tiny_cfg):
    torch.manual_seed(0)
    head = SarmHead(tiny_cfg).eval()
    feats, valid = sarm_inputs(tiny_cfg, 4)
    task = torch.ones(4, dtype=torch.int64)
    logits, tau = head(feats, valid, task)
    predicted = logits.argmax(-1)
    _, same = head(feats, valid, task, stage_hint=predicted)
    _, kept = head(feats, valid, task, stage_hint=torch.full((4,), -1))
    _, other = head(feats, valid, task, stage_hint=(predicted + 1) % 7)
    assert torch.equal(same, tau) and torch.equal(kept, tau)
    assert not torch.allclose(other, tau)
    assert ((tau > 0) & (tau < 1)).all() and tau.shape == (4,)


def test_grm_hop_stays_in_minus_one_to_one(tiny_cfg):
    torch.manual_seed(0)
    head = GrmHead(tiny_cfg).eval()
    with torch.no_grad():
        for p in head.mlp.parameters():
            p.mul_(50.0)
    x = [100.0 * torch.randn(16, 3, 32) for _ in range(4)]
    hop = head(*x, torch.randint(0, 2, (16,)))
    assert hop.shape == (16,) and (hop.abs() <= 1).all()
    assert hop.min() < -0.5 and hop.max() > 0.5  # saturating both ways, not stuck at one sign


def test_sarm_and_grm_accept_a_batch_of_one(tiny_cfg):
    torch.manual_seed(0)
    sarm, grm = SarmHead(tiny_cfg).eval(), GrmHead(tiny_cfg).eval()
    feats, valid = sarm_inputs(tiny_cfg, 1)
    logits, tau = sarm(feats, valid, torch.zeros(1, dtype=torch.int64))
    assert logits.shape == (1, 7) and tau.shape == (1,)
    assert grm(*[torch.randn(1, 3, 32)] * 4, torch.zeros(1, dtype=torch.int64)).shape == (1,)


def ensemble_cfg(tiny_dict, members):
    from stageward_train.config import ModelConfig
    tiny_dict["architecture"]["ensemble"] = members
    return ModelConfig.from_dict(tiny_dict)


def test_ensemble_of_identical_members_is_the_single_head_and_keeps_only_stage_ambiguity(tiny_dict, tiny_cfg):
    torch.manual_seed(0)
    single = SarmHead(tiny_cfg).eval()
    torch.manual_seed(0)
    multi = SarmHead(ensemble_cfg(tiny_dict, 3)).eval()
    multi.load_state_dict(single.state_dict(), strict=False)
    with torch.no_grad():
        for m in multi.members:
            m["stage"].load_state_dict(single.stage.state_dict())
            m["tau"].load_state_dict(single.tau.state_dict())
    feats, valid = sarm_inputs(tiny_cfg, 6)
    task = torch.zeros(6, dtype=torch.int64)
    want_logits, want_tau = single(feats, valid, task)
    logits, tau, spread = multi.predict(feats, valid, task)
    assert torch.allclose(logits, want_logits, atol=1e-5) and torch.allclose(tau, want_tau, atol=1e-6)
    # identical members: only the stage's own ambiguity is left (the midpoints' spread under softmax)
    probs = torch.softmax(want_logits, -1)
    priors = [p for _, p in tiny_cfg.stages[tiny_cfg.tasks[0]]]
    mids = torch.tensor([sum(priors[:k]) + priors[k] / 2 for k in range(len(priors))] + [0.0] * (probs.shape[1] - len(priors)))
    mu = (probs * mids).sum(-1, keepdim=True)
    assert spread.shape == (6,) and torch.allclose(spread, ((probs * (mids - mu) ** 2).sum(-1) + 1e-12).sqrt(), atol=1e-5)
    assert single.predict(feats, valid, task)[2] is None


def test_ensemble_uncertainty_is_the_members_spread_plus_the_stage_ambiguity(tiny_dict):
    cfg = ensemble_cfg(tiny_dict, 4)
    torch.manual_seed(1)
    head = SarmHead(cfg).eval()
    feats, valid = sarm_inputs(cfg, 5)
    task = torch.tensor([0, 0, 1, 1, 0])
    _, _, spread = head.predict(feats, valid, task)
    members = head.member_outputs(feats, valid, task)
    assert len(members) == 4
    priors = {i: [p for _, p in cfg.stages[t]] for i, t in enumerate(cfg.tasks)}
    for b in range(5):
        progress = []
        for logits, tau in members:
            k = int(logits[b].argmax())
            pr = priors[int(task[b])]
            progress.append(sum(pr[:k]) + pr[k] * float(tau[b]))
        mean = sum(progress) / 4
        members_var = sum((p - mean) ** 2 for p in progress) / 4
        pr = priors[int(task[b])]
        consensus = torch.softmax(torch.stack([lg[b] for lg, _ in members]).mean(0), -1)[:len(pr)]
        mids = [sum(pr[:k]) + pr[k] / 2 for k in range(len(pr))]
        mu = sum(float(q) * m for q, m in zip(consensus, mids))
        stages_var = sum(float(q) * (m - mu) ** 2 for q, m in zip(consensus, mids))
        assert abs(float(spread[b]) - (members_var + stages_var) ** 0.5) < 1e-4
    assert (spread > 0).all()  # independently initialised members disagree


def test_ensemble_training_loss_trains_every_member(tiny_dict):
    cfg = ensemble_cfg(tiny_dict, 3)
    torch.manual_seed(0)
    head = SarmHead(cfg)
    feats, valid = sarm_inputs(cfg, 4)
    outs = head.member_outputs(feats, valid, torch.zeros(4, dtype=torch.int64))
    loss = sum(o[0].sum() + o[1].sum() for o in outs)
    loss.backward()
    for m in head.members:
        assert m["stage"].weight.grad is not None and m["stage"].weight.grad.abs().sum() > 0
