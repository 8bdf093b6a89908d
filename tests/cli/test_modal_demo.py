"""``wm4d modal-demo`` writes mode-shape PNGs and a poke animation."""

from __future__ import annotations

import imageio.v2 as imageio

from worldmodel.cli.main import main


def test_modal_demo_writes_png_and_mp4(tmp_path):
    assert main(["modal-demo", f"out={tmp_path}", "frames=6", "num_modes=3", "resolution=[8,2,1]"]) == 0
    png = imageio.imread(tmp_path / "modal_modes.png")
    assert png.ndim == 3 and png.shape[0] > 100 and png.std() > 0
    with imageio.get_reader(tmp_path / "modal_poke.mp4") as reader:
        frames = [frame for frame in reader]  # list(reader) trips over the reader's nframes = inf
    assert len(frames) == 6
    assert any(abs(frames[i].astype(int) - frames[0]).mean() > 0 for i in range(1, 6))  # the bar moves
