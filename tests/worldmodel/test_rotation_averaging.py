"""Test-time rotation averaging: exact equivariance over its turns, the MPC split equals the forward pass,
one turn is the bare model, and checkpoints ask for it through config.json."""

import json
import math

import pytest
import torch

from worldmodel.formulation import PAST_KEYS, START_KEY
from worldmodel.models import PointNetFlow, RotationAveraged
from worldmodel.models.rotation_averaging import turn, z_rotations
from worldmodel.pretrained import load_model
from worldmodel.training import save_checkpoint


def batch(B=2, N=48, Nr=12, H=4, seed=0, history=2):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    out = {"scene_points": r(B, N, 3) * 0.4 - 0.2, "scene_colors": r(B, N, 3), "scene_normals": r(B, N, 3),
           "gripper_points": r(B, H + 1, Nr, 3) * 0.4 - 0.2, "gripper_velocity": r(B, H + 1, Nr, 3) * 0.1,
           "gripper_acceleration": r(B, H + 1, Nr, 3)}
    for key in PAST_KEYS[:history] + (START_KEY,):
        out[key] = (r(B, N, 3) - 0.5) * 0.01
    return out


def model(seed=0):
    torch.manual_seed(seed)
    return PointNetFlow(horizon=4, width=32, anchors=16, use_velocity=True, history=2, since_start=True).eval()


def test_z_rotations_are_proper_turns_about_z():
    mats = z_rotations(6, dtype=torch.float64)
    assert torch.allclose(mats @ mats.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(6, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(mats), torch.ones(6, dtype=torch.float64))
    assert torch.allclose(mats[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(6, 3))
    angle = torch.atan2(mats[1, 1, 0], mats[1, 0, 0])
    assert math.isclose(float(angle), math.pi / 3, abs_tol=1e-12)


def test_the_average_is_exactly_equivariant_to_its_turns_though_the_model_is_not():
    base, b = model(), batch()
    avg = RotationAveraged(base, 4)
    quarter = z_rotations(4)[1]
    with torch.no_grad():
        flow, log_var = avg(b)
        turned_flow, turned_log_var = avg(turn(b, quarter))
        bare, _ = base(b)
        bare_turned, _ = base(turn(b, quarter))
    assert torch.allclose(turned_flow, flow @ quarter.T, atol=1e-6)  # the turned scene's flow is the flow, turned
    assert torch.allclose(turned_log_var, log_var, atol=1e-5)
    assert (bare_turned - bare @ quarter.T).abs().max() > 1e-4  # the untrained model alone is not equivariant
    # the average is the mean of the turned-back predictions of each turned copy
    manual = torch.stack([base(turn(b, r))[0] @ r for r in z_rotations(4)]).mean(0)
    assert torch.allclose(flow, manual, atol=1e-6)


def test_the_mixture_variance_holds_the_spread_and_one_turn_is_the_bare_model():
    base, b = model(), batch()
    with torch.no_grad():
        flow1, log_var1 = RotationAveraged(base, 1)(b)
        flow0, log_var0 = base(b)
        _, log_var4 = RotationAveraged(base, 4)(b)
        per_turn = torch.stack([base(turn(b, r))[1] for r in z_rotations(4)]).exp().mean(0)
    assert torch.allclose(flow1, flow0, atol=1e-6) and torch.allclose(log_var1, log_var0, atol=1e-5)
    assert torch.all(log_var4.exp() >= per_turn * (1 - 1e-5))  # disagreement only adds variance


def test_the_mpc_split_decodes_the_same_flow_as_the_forward_pass():
    avg, b = RotationAveraged(model(), 3), batch(B=1)
    pushes = {k: torch.cat([v, v.flip(-1)]) for k, v in b.items() if k.startswith("gripper")}
    with torch.no_grad():
        flow, log_var = avg.decode(avg.encode_scene(b), avg.encode_push(pushes))
        first, first_lv = avg(b)
    assert flow.shape == (2, 4, 48, 3) and log_var.shape == (2, 4, 48)
    assert torch.allclose(flow[:1], first, atol=1e-6) and torch.allclose(log_var[:1], first_lv, atol=1e-5)
    assert avg.horizon == 4 and avg.inputs == ("previous_displacement", "earlier_displacement", START_KEY)


def test_bad_rotation_counts_are_refused():
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="rotations must be a positive integer"):
            RotationAveraged(model(), bad)
    with pytest.raises(ValueError, match="needs the MPC interface"):
        RotationAveraged(torch.nn.Linear(3, 3), 2)


def test_a_checkpoint_asks_for_averaging_in_its_config(tmp_path):
    base = model()
    config = {"model": {"_target_": "worldmodel.models.PointNetFlow", "horizon": 4, "width": 32, "anchors": 16,
                        "use_velocity": True, "history": 2, "since_start": True}, "horizon": 4,
              "inference": {"rotations": 4}}
    optimizer = torch.optim.AdamW(base.parameters())
    save_checkpoint(tmp_path, base, optimizer, 0, config, torch.Generator())
    loaded, cfg = load_model(tmp_path)
    assert isinstance(loaded, RotationAveraged) and loaded.rotations == 4 and not loaded.training
    bare, _ = load_model(tmp_path, rotations=1)
    assert isinstance(bare, PointNetFlow)
    b = batch()
    with torch.no_grad():
        assert torch.allclose(loaded(b)[0], RotationAveraged(base, 4)(b)[0], atol=1e-6)
    (tmp_path / "config.json").write_text(json.dumps({**config, "inference": {"rotations": 0}}))
    with pytest.raises(ValueError, match="inference.rotations must be a positive integer"):
        load_model(tmp_path)
