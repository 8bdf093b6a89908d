"""PointFlowTransformer and point serialisation: shapes, input checking, MPC decoding, z-order locality,
farthest-point sampling, permutation equivariance, learning on a tiny batch, config and checkpoints.

The model sees absolute (normalised) positions on purpose (the table and walls are fixed), so it is
not translation invariant and no translation test is made; it is permutation equivariant instead.
"""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from worldmodel.formulation import heteroscedastic_huber, l2_per_step
from worldmodel.models import PointFlowTransformer
from worldmodel.models.serialization import farthest_point_sampling, morton_codes, serialize
from worldmodel.training import load_weights, save_checkpoint

CONF = Path(__file__).resolve().parents[2] / "worldmodel" / "cli" / "conf" / "model" / "transformer.yaml"
SMALL = dict(horizon=4, width=32, heads=2, depth=2, patch_size=16, num_anchors=16, decoder_layers=1,
             gripper_tokens=4, fourier_bands=2)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not stall when other work holds the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batch(B=2, N=40, Nr=12, H=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    return {"scene_points": r(B, N, 3) * 0.4 - 0.2, "scene_colors": r(B, N, 3), "scene_normals": r(B, N, 3),
            "gripper_points": r(B, H + 1, Nr, 3) * 0.4 - 0.2, "gripper_velocity": r(B, H + 1, Nr, 3) * 0.1,
            "gripper_acceleration": r(B, H + 1, Nr, 3)}


def model(**overrides) -> PointFlowTransformer:
    """A small model whose zero-initialised output layers are randomised, so outputs depend on every input."""
    torch.manual_seed(0)
    m = PointFlowTransformer(**{**SMALL, **overrides})
    with torch.no_grad():
        for layer in (m.head, m.film, m.point_log_var):
            layer.weight.normal_(std=0.1)
    return m.eval()


def test_shapes_dtype_and_bad_input():
    m = model()
    for N in (40, 16, 7):  # padded patches, one exact patch, fewer points than a patch and than anchors
        disp, log_var = m(batch(N=N))
        assert disp.shape == (2, 4, N, 3) and log_var.shape == (2, 4, N)
        assert disp.dtype == log_var.dtype == torch.float32 and torch.isfinite(disp).all()
    bad = batch()
    bad["gripper_velocity"] = bad["gripper_velocity"][:, :3]
    with pytest.raises(ValueError, match="gripper_velocity must be a float tensor of shape"):
        m(bad)
    bad = batch()
    del bad["scene_colors"]
    with pytest.raises(ValueError, match="lacks"):
        m(bad)
    with pytest.raises(ValueError, match="H \\+ 1 = 5 steps"):
        m.encode_push({k: v[:, :3] for k, v in batch().items()})
    for kwargs in ({"width": 30, "heads": 4}, {"depth": 0}, {"horizon": -1}, {"grid_size": 0.0}):
        with pytest.raises(ValueError):
            PointFlowTransformer(**{**SMALL, **kwargs})


def test_one_encoded_scene_serves_many_pushes():
    m = model()
    b = batch(B=5)
    for k in ("scene_points", "scene_colors", "scene_normals"):  # the same scene for every candidate
        b[k] = b[k][:1].expand_as(b[k]).contiguous()
    with torch.no_grad():
        full, full_var = m(b)
        code = m.encode_scene({k: v[:1] for k, v in b.items()})
        shared, shared_var = m.decode(code, m.encode_push(b))
    assert full.abs().max() > 1e-4  # the comparison is not between zeros
    torch.testing.assert_close(shared, full)
    torch.testing.assert_close(shared_var, full_var)
    with pytest.raises(ValueError, match="cannot serve"):
        m.decode(tuple(c.expand(2, *c.shape[1:]) for c in code), m.encode_push(b))


def test_morton_codes_interleave_bits_and_keep_neighbours_close():
    corners = torch.tensor([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)])
    assert morton_codes(corners).tolist() == list(range(8))
    assert morton_codes(torch.tensor([[2, 0, 0], [0, 2, 0], [3, 3, 3]])).tolist() == [8, 16, 63]
    with pytest.raises(ValueError):
        morton_codes(torch.tensor([[-1, 0, 0]]))
    grid = torch.stack(torch.meshgrid(*[torch.arange(8)] * 3, indexing="ij"), dim=-1).view(1, -1, 3).float()
    for order in ("xyz", "yxz"):
        codes = serialize(grid * 0.25 - 3.0, grid_size=0.25, order=order)[0]  # exact binary fractions
        perm = codes.argsort()
        assert torch.equal(perm.sort().values, torch.arange(512)) and codes.unique().numel() == 512
        assert torch.equal(serialize(grid + 5.0, grid_size=1.0, order=order)[0], codes)  # whole-cell shifts
        assert set(map(tuple, grid[0, perm[:8]].long().tolist())) == set(map(tuple, corners.tolist()))
        steps = (grid[0, perm[1:]] - grid[0, perm[:-1]]).norm(dim=-1).mean()
        shuffled = torch.randperm(512, generator=torch.Generator().manual_seed(0))
        random_steps = (grid[0, shuffled[1:]] - grid[0, shuffled[:-1]]).norm(dim=-1).mean()
        assert steps < 2.0 < random_steps  # consecutive codes are mostly adjacent cells
    assert not torch.equal(serialize(grid, 1.0, "xyz"), serialize(grid, 1.0, "yxz"))
    with pytest.raises(ValueError, match="unknown order"):
        serialize(grid, 1.0, "xxz")


def test_farthest_point_sampling_spreads_points():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(3, 500, 3, generator=g)
    idx = farthest_point_sampling(pts, 32)
    assert idx.shape == (3, 32) and all(row.unique().numel() == 32 for row in idx)

    def min_gap(sel):
        d = torch.cdist(sel, sel) + 10 * torch.eye(sel.shape[1])
        return d.amin(dim=(1, 2))

    chosen = torch.gather(pts, 1, idx.unsqueeze(-1).expand(-1, -1, 3))
    assert (min_gap(chosen) > 2 * min_gap(pts[:, :32])).all()  # the first 32 points are a random subset
    perm = torch.randperm(500, generator=g)
    assert set(perm[farthest_point_sampling(pts[:, perm], 32)[0]].tolist()) == set(idx[0].tolist())
    with pytest.raises(ValueError):
        farthest_point_sampling(pts, 501)


def test_permuting_scene_points_permutes_the_flow():
    m = model(grid_size=1e-4)  # fine grid: no two points share a cell, so the serialisation has no ties
    b = batch(B=2, N=40)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    permuted = {**b, **{k: b[k][:, perm] for k in ("scene_points", "scene_colors", "scene_normals")}}
    with torch.no_grad():
        disp, log_var = m(b)
        disp_p, log_var_p = m(permuted)
    torch.testing.assert_close(disp_p, disp[:, :, perm], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(log_var_p, log_var[:, :, perm], atol=1e-5, rtol=1e-4)


def test_loss_decreases_when_fitting_a_tiny_batch():
    torch.manual_seed(0)
    m = PointFlowTransformer(**SMALL)
    b = batch(B=2, N=32, Nr=8)
    # a "block" (points with x > 0) follows the gripper's mean velocity; the rest stays still
    block = (b["scene_points"][..., 0] > 0).float()[:, None, :, None]
    steps = torch.arange(1, 5).float().view(1, 4, 1, 1) * 0.1
    target = block * steps * b["gripper_velocity"].mean(dim=(1, 2))[:, None, None, :]
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        disp, log_var = m(b)
        loss = heteroscedastic_huber(disp, log_var, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = l2_per_step(m(b)[0].detach(), target)["all"].mean()
    assert losses[-1] < 0.5 * losses[0]
    assert final < 0.5 * torch.linalg.vector_norm(target, dim=-1).mean()  # half the zero-flow error


def test_hydra_config_instantiates():
    cfg = OmegaConf.create({"horizon": 6, "model": OmegaConf.load(CONF)})
    m = instantiate(cfg.model)
    assert isinstance(m, PointFlowTransformer) and m.horizon == 6


def test_checkpoint_round_trip(tmp_path):
    m = model()
    with torch.no_grad():  # the normalisation buffers the training job fills travel with the weights
        m.position_mean.copy_(torch.tensor([0.01, -0.02, 0.03]))
        m.position_scale.fill_(0.25)
        m.displacement_scale.fill_(0.015)
    save_checkpoint(tmp_path, m, torch.optim.AdamW(m.parameters()), 7, {"model": "transformer"},
                    torch.Generator().manual_seed(0))
    fresh = PointFlowTransformer(**SMALL).eval()
    assert load_weights(fresh, tmp_path / "model.safetensors") == 7
    assert fresh.state_dict().keys() == m.state_dict().keys()
    for k, v in m.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v)
    with torch.no_grad():
        torch.testing.assert_close(fresh(batch())[0], m(batch())[0])
