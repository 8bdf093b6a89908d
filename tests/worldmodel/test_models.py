"""Point-flow models: shapes, input checking, the formulation's metrics, learning on a tiny batch."""

import pytest
import torch

from worldmodel.formulation import heteroscedastic_huber, l2_per_step
from worldmodel.models import PointNetFlow


def batch(B=2, N=64, Nr=16, H=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    return {"scene_points": r(B, N, 3) * 0.4 - 0.2, "scene_colors": r(B, N, 3), "scene_normals": r(B, N, 3),
            "gripper_points": r(B, H + 1, Nr, 3) * 0.4 - 0.2, "gripper_velocity": r(B, H + 1, Nr, 3) * 0.1,
            "gripper_acceleration": r(B, H + 1, Nr, 3)}


def test_shapes_and_bad_input():
    torch.manual_seed(0)
    model = PointNetFlow(horizon=4, width=32)
    disp, log_var = model(batch())
    assert disp.shape == (2, 4, 64, 3) and log_var.shape == (2, 4, 64)
    bad = batch()
    bad["gripper_points"] = bad["gripper_points"][:, :3]
    with pytest.raises(ValueError, match="gripper_points must be a float tensor of shape"):
        model(bad)
    bad = batch()
    del bad["scene_normals"]
    with pytest.raises(ValueError, match="lacks"):
        model(bad)
    moving = PointNetFlow(horizon=4, width=32, use_velocity=True)
    with pytest.raises(ValueError, match="previous_displacement"):
        moving(batch())
    b = batch()
    b["previous_displacement"] = torch.zeros(2, 64, 3)
    slow = moving(b)[0]
    b["previous_displacement"] = torch.full((2, 64, 3), 0.01)
    assert moving(b)[0].shape == (2, 4, 64, 3) and not torch.equal(moving(b)[0], slow)  # an input, not ignored
    b["previous_displacement"] = torch.zeros(2, 64, 2)
    with pytest.raises(ValueError, match="previous_displacement must be a float tensor of shape"):
        moving(b)
    phased = PointNetFlow(horizon=4, width=32, use_velocity=True, history=2)
    b["previous_displacement"] = torch.zeros(2, 64, 3)
    with pytest.raises(ValueError, match="earlier_displacement"):
        phased(b)
    b["earlier_displacement"] = torch.zeros(2, 64, 3)
    still = phased(b)[0]
    b["earlier_displacement"] = torch.full((2, 64, 3), 0.01)
    assert not torch.equal(phased(b)[0], still)  # an input, not ignored
    with pytest.raises(ValueError, match="history"):
        PointNetFlow(history=7)
    with pytest.raises(ValueError, match="history"):
        PointNetFlow(history=0)
    ringing = PointNetFlow(horizon=4, width=32, use_velocity=True, history=4, since_start=True)
    assert ringing.inputs == ("previous_displacement", "earlier_displacement", "displacement_lag3",
                              "displacement_lag4", "start_displacement")
    b["displacement_lag3"] = torch.zeros(2, 64, 3)
    b["displacement_lag4"] = torch.zeros(2, 64, 3)
    with pytest.raises(ValueError, match="start_displacement"):
        ringing(b)
    b["start_displacement"] = torch.zeros(2, 64, 3)
    rest = ringing(b)[0]
    for key in ("displacement_lag4", "start_displacement"):  # inputs, not ignored
        b[key] = torch.full((2, 64, 3), 0.01)
        assert not torch.equal(ringing(b)[0], rest)
        b[key] = torch.zeros(2, 64, 3)


def test_metrics_separate_moved_and_static_points():
    target = torch.zeros(1, 2, 3, 3)
    target[0, :, 0, 0] = 0.02  # point 0 moves 2 cm
    target[0, 1, 1, 0] = 0.003  # point 1 moves 3 mm at step 2: neither moved (<5 mm) nor static (>1 mm)
    pred = torch.zeros_like(target)
    m = l2_per_step(pred, target)
    torch.testing.assert_close(m["moved"], torch.tensor([0.02, 0.02]))
    torch.testing.assert_close(m["static"], torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(m["all"], torch.tensor([0.02 / 3, 0.023 / 3]))


def test_loss_decreases_when_fitting_a_tiny_batch():
    torch.manual_seed(0)
    model = PointNetFlow(horizon=4, width=32)
    b = batch()
    # exact flow of a rigid push: points on the right half move with the gripper's mean velocity
    right = (b["scene_points"][..., 0] > 0).float()[:, None, :, None]
    steps = torch.arange(1, 5).float().view(1, 4, 1, 1) * 0.1
    target = right * steps * b["gripper_velocity"].mean(dim=(1, 2))[:, None, None, :]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        disp, log_var = model(b)
        loss = heteroscedastic_huber(disp, log_var, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = l2_per_step(model(b)[0].detach(), target)["all"].mean()
    assert losses[-1] < 0.5 * losses[0]
    assert final < 0.5 * torch.linalg.vector_norm(target, dim=-1).mean()  # half the zero-flow error


@pytest.mark.parametrize("point_offsets", [False, True])
def test_one_encoded_scene_serves_many_pushes(point_offsets):
    torch.manual_seed(0)
    model = PointNetFlow(horizon=4, width=32, point_offsets=point_offsets).eval()
    b = batch(B=5)
    for k in ("scene_points", "scene_colors", "scene_normals"):  # the same scene for every candidate
        b[k] = b[k][:1].expand_as(b[k]).contiguous()
    with torch.no_grad():
        full, _ = model(b)
        code = model.encode_scene({k: v[:1] for k, v in b.items()})
        shared, _ = model.decode(code, model.encode_push(b))
    torch.testing.assert_close(shared, full)
    with pytest.raises(ValueError, match="cannot serve"):
        model.decode(tuple(c.expand(2, *c.shape[1:]) for c in code), model.encode_push(b))


def test_beta_nll_gives_the_mean_the_plain_huber_gradient():
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 3, 5, 3, generator=g) * 0.02
    pred = torch.randn(2, 3, 5, 3, generator=g).mul(0.02).requires_grad_()
    log_var = torch.randn(2, 3, 5, generator=g).mul(2.0).requires_grad_()  # variances spread over e^+-4
    heteroscedastic_huber(pred, log_var, target, scale=0.01).backward()
    plain = pred.detach().clone().requires_grad_()
    err = torch.linalg.vector_norm(plain - target, dim=-1) / 0.01
    (0.5 * F.huber_loss(err, torch.zeros_like(err), reduction="none")).mean().backward()
    torch.testing.assert_close(pred.grad, plain.grad)  # variance does not scale the displacement's gradient
    huber = F.huber_loss(err.detach(), torch.zeros_like(err), reduction="none")
    torch.testing.assert_close(log_var.grad, 0.5 * (log_var.detach().exp() - huber) / huber.numel())


@pytest.mark.parametrize("point_offsets", [False, True])
def test_inference_without_autograd_equals_the_training_path(point_offsets):
    # without autograd large batches run in chunks of pushes with in-place activations
    torch.manual_seed(0)
    model = PointNetFlow(horizon=4, width=32, point_offsets=point_offsets).eval()
    b = batch(B=37)
    with torch.no_grad():
        fast, fast_var = model(b)
        shared, _ = model.decode(model.encode_scene({k: v[:1] for k, v in b.items()}), model.encode_push(b))
    slow, slow_var = model(b)  # autograd on: one pass, out-of-place activations
    torch.testing.assert_close(fast, slow.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fast_var, slow_var.detach(), atol=1e-6, rtol=1e-5)
    with torch.enable_grad():
        one_scene, _ = model.decode(model.encode_scene({k: v[:1] for k, v in b.items()}), model.encode_push(b))
    torch.testing.assert_close(shared, one_scene.detach(), atol=1e-6, rtol=1e-5)
