"""Point-flow model speed on this CPU: inference ms at batch 1 and for 256 candidate pushes on one
encoded scene (the MPC case), and training samples/s.

    python benchmarks/bench_model.py [--model pointnet|transformer|all] [--points 1024] [--gripper 256]
                                     [--horizon 10] [--width W] [--threads T]
"""

from __future__ import annotations

import argparse
import time

import torch

from worldmodel.formulation import heteroscedastic_huber
from worldmodel.models import PointFlowTransformer, PointNetFlow

MODELS = {"pointnet": (PointNetFlow, 128), "transformer": (PointFlowTransformer, 64)}


def random_batch(B: int, N: int, Nr: int, H: int) -> dict[str, torch.Tensor]:
    """A batch of the model's input shapes (values do not matter for timing)."""
    g = torch.Generator().manual_seed(0)
    return {"scene_points": torch.rand(B, N, 3, generator=g), "scene_colors": torch.rand(B, N, 3, generator=g),
            "scene_normals": torch.rand(B, N, 3, generator=g), "gripper_points": torch.rand(B, H + 1, Nr, 3, generator=g),
            "gripper_velocity": torch.rand(B, H + 1, Nr, 3, generator=g),
            "gripper_acceleration": torch.rand(B, H + 1, Nr, 3, generator=g),
            "target": torch.rand(B, H, N, 3, generator=g) * 0.01}


def timed(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in ms."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return 1000 * best


def bench(cls: type, width: int, a: argparse.Namespace) -> None:
    """Print the figures of one model class."""
    torch.manual_seed(0)
    model = cls(horizon=a.horizon, width=width).eval()
    one = random_batch(1, a.points, a.gripper, a.horizon)
    many = random_batch(256, a.points, a.gripper, a.horizon)
    with torch.no_grad():
        ms1 = timed(lambda: model(one), 10)

        def shared():
            return model.decode(model.encode_scene(one), model.encode_push(many))

        ms256 = timed(shared, 3)
    print(f"{cls.__name__} width {width}, Ns {a.points}, Nr {a.gripper}, H {a.horizon}, "
          f"{torch.get_num_threads()} threads")
    print(f"parameters: {sum(p.numel() for p in model.parameters())}")
    print(f"inference batch 1: {ms1:.1f} ms (goal <= 50 ms)")
    print(f"inference 256 pushes on one encoded scene: {ms256:.0f} ms (goal <= 1000 ms)")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_batch = random_batch(16, a.points, a.gripper, a.horizon)

    def step():
        pred, log_var = model(train_batch)
        loss = heteroscedastic_huber(pred, log_var, train_batch["target"])
        opt.zero_grad()
        loss.backward()
        opt.step()

    ms = timed(step, 3)
    print(f"training: {16 / (ms / 1000):.0f} samples/s (batch 16)")


def main() -> None:
    """Print the figures of the chosen models."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=[*MODELS, "all"], default="pointnet")
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--gripper", type=int, default=256)
    ap.add_argument("--horizon", type=int, default=10)
    ap.add_argument("--width", type=int, default=None, help="default: 128 pointnet, 64 transformer")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    for name in MODELS if a.model == "all" else [a.model]:
        cls, default_width = MODELS[name]
        bench(cls, a.width or default_width, a)


if __name__ == "__main__":
    main()
