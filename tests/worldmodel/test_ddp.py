"""torchrun data parallelism: 2 CPU processes (gloo) end with identical weights, equal to one
process training on the same global batches."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

WORKER = textwrap.dedent('''
    import sys
    import torch
    from torch.utils.data import Dataset
    from worldmodel.models import PointNetFlow
    from worldmodel.training import TrainConfig, train
    from worldmodel.training.distributed import world

    class Synthetic(Dataset):
        """Block points follow the gripper's mean motion; fixed by the seed."""

        def __init__(self, n=16, N=24, Nr=8, H=3):
            g = torch.Generator().manual_seed(0)
            self.items = []
            for _ in range(n):
                grip = torch.rand(H + 1, Nr, 3, generator=g) * 0.1
                motion = grip.mean(1) - grip[0].mean(0)
                target = motion[1:, None, :].expand(H, N, 3).clone()
                target[:, N // 2:] = 0
                self.items.append({"scene_points": torch.rand(N, 3, generator=g) * 0.2,
                                   "scene_colors": torch.rand(N, 3, generator=g),
                                   "scene_normals": torch.rand(N, 3, generator=g),
                                   "gripper_points": grip, "gripper_velocity": grip * 0.5,
                                   "gripper_acceleration": grip * 0.1, "target": target})

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    out, batch = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    model = PointNetFlow(horizon=3, width=16)
    cfg = TrainConfig(steps=6, batch_size=batch, warmup_steps=1, lr=3e-3, device="cpu", log_every=2,
                      checkpoint_every=3)
    train(model, Synthetic(), cfg, out)
    rank, size = world()
    torch.save(model.state_dict(), f"{out}/weights_rank{rank}_of_{size}.pt")
''')


def run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
         str(script), str(tmp_path / "ddp"), "4"], tmp_path)
    run([sys.executable, str(script), str(tmp_path / "single"), "8"], tmp_path)
    r0 = torch.load(tmp_path / "ddp" / "weights_rank0_of_2.pt")
    r1 = torch.load(tmp_path / "ddp" / "weights_rank1_of_2.pt")
    single = torch.load(tmp_path / "single" / "weights_rank0_of_1.pt")
    for k in r0:
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=0, msg=k)  # bit-identical across ranks
        torch.testing.assert_close(r0[k], single[k], rtol=1e-4, atol=1e-6, msg=k)  # same global batches
    assert (tmp_path / "ddp" / "model.safetensors").exists() and (tmp_path / "ddp" / "metrics.csv").exists()
