"""Jobs never lose or mix data: one configuration per store and per eval directory, nothing left by a
failed job, one-line errors, images and outcomes recorded, ``--help`` for every job."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from worldmodel.cli.main import available_jobs, main
from worldmodel.data import RolloutStore

FAST = ["env.robot=panda_hand", "max_steps=3"]


def tree_digest(path: Path) -> str:
    """Hash of every file's relative path, bytes and modification time under ``path``."""
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            p = Path(root) / name
            h.update(str(p.relative_to(path)).encode() + p.read_bytes() + str(p.stat().st_mtime_ns).encode())
    return h.hexdigest()


def wm4d(capsys, *args: str) -> tuple[int, str]:
    """Run ``wm4d`` in this process; (exit code, stderr without progress bars and library notices)."""
    code = main(list(args))
    err = capsys.readouterr().err
    return code, "\n".join(line for line in err.splitlines() if line.startswith(("wm4d", "Traceback", "  File")))


def test_refused_resume_names_each_difference_and_leaves_store_unchanged(tmp_path, capsys):
    out = tmp_path / "d.zarr"
    assert wm4d(capsys, "collect", *FAST, "episodes=2", f"out={out}")[0] == 0
    attrs = RolloutStore(out).attrs
    kwargs = attrs["env_kwargs"]
    assert kwargs["backend"] == "mujoco" and kwargs["friction"] == 0.5 and kwargs["num_scene_points"] == 1024
    assert attrs["fps"] == 10 and attrs["policy"]["_target_"].endswith("RandomPushPolicy") and attrs["max_steps"] == 3
    before = tree_digest(out)
    code, err = wm4d(capsys, "collect", *FAST, "episodes=4", f"out={out}", "resume=true",
                     "env.backend=pybullet", "env.friction=0.9")
    assert code == 2
    assert "env_kwargs.backend: store 'mujoco', this run 'pybullet'" in err
    assert "env_kwargs.friction: store 0.5, this run 0.9" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    for changed in (["env.robot=panda"], ["policy=heuristic"], ["seed=1"], ["max_steps=4"]):
        code, err = wm4d(capsys, "collect", *FAST, *changed, "episodes=4", f"out={out}", "resume=true")
        assert code == 2 and "refusing to append" in err, changed
    assert tree_digest(out) == before
    store = RolloutStore(out)
    assert store.num_episodes == 2 and store.num_steps == 6
    # the same configuration appends, and the result equals one uninterrupted run
    assert wm4d(capsys, "collect", *FAST, "episodes=3", f"out={out}", "resume=true")[0] == 0
    assert wm4d(capsys, "collect", *FAST, "episodes=3", f"out={tmp_path / 'one.zarr'}")[0] == 0
    a, b = RolloutStore(out), RolloutStore(tmp_path / "one.zarr")
    assert a.num_episodes == 3
    for key in ("action", "scene_points", "block_pose7"):
        np.testing.assert_array_equal(a.array(key), b.array(key))


@pytest.mark.parametrize("bad, expected", [
    (["env.robot=bogus"], "unknown robot 'bogus'"),
    (["env_id=Nope-v0"], "unknown env_id 'Nope-v0'"),
    (["env_id=Poke4D-v0", "policy=random_push"], "does not fit Poke4D-v0: it reads obs['block_pose']"),
    (["env.friction=-1"], "friction"),
    (["episodes=0"], "episodes must be a positive integer"),
])
def test_collect_that_fails_leaves_nothing_and_rerun_works(tmp_path, capsys, bad, expected):
    out = tmp_path / "s.zarr"
    code, err = wm4d(capsys, "collect", *FAST, "episodes=1", f"out={out}", *bad)
    assert code == 2 and expected in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert wm4d(capsys, "collect", *FAST, "episodes=1", f"out={out}")[0] == 0
    assert RolloutStore(out).num_episodes == 1


def test_images_recorded_whenever_asked_and_outcomes_per_step(tmp_path, capsys):
    cases = {"pc": ["record_images=true"], "rgbd": ["env.obs_mode=rgbd"],
             "state": ["env.obs_mode=state", "record_images=true"]}
    for name, args in cases.items():
        assert wm4d(capsys, "collect", *FAST, "episodes=1", f"out={tmp_path / name}.zarr", *args)[0] == 0
        store = RolloutStore(tmp_path / f"{name}.zarr")
        assert {"rgb", "depth", "segmentation"} <= set(store.keys), name
        rgb = store.array("rgb")
        assert rgb.shape == (3, 2, 96, 96, 3) and rgb.dtype == np.uint8 and rgb.std() > 0
        assert store.attrs["record_images"] is True
    assert "scene_points" in RolloutStore(tmp_path / "pc.zarr").keys
    assert RolloutStore(tmp_path / "pc.zarr").attrs["env_kwargs"]["obs_mode"] == "all"
    assert wm4d(capsys, "collect", *FAST, "episodes=1", f"out={tmp_path / 'no.zarr'}", "env.obs_mode=rgbd",
                "record_images=false")[0] == 0
    assert "rgb" not in RolloutStore(tmp_path / "no.zarr").keys
    # outcomes: terminated and is_success per step, from a start already at the goal
    assert wm4d(capsys, "collect", "env.robot=panda_hand", "env.obs_mode=state", "env.start=near_goal", "episodes=6",
                "max_steps=20", "policy=heuristic", f"out={tmp_path / 'h.zarr'}")[0] == 0
    store = RolloutStore(tmp_path / "h.zarr")
    term, succ, reward = store.array("terminated"), store.array("is_success"), store.array("reward")
    assert term.dtype == bool and succ.dtype == bool and len(term) == store.num_steps
    np.testing.assert_array_equal(term, succ)  # PushT4D terminates exactly on success
    assert np.all(reward[succ] == 1.0)
    for i in range(store.num_episodes):  # only an episode's last step can terminate it
        assert not store.episode(i, ["terminated"])["terminated"][:-1].any()


def test_eval_directory_holds_one_configuration(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["eval", "planner=heuristic", "env.robot=panda_hand", "env.obs_mode=state", "max_steps=4", "videos=0",
            f"out={out}"]
    assert wm4d(capsys, *args, "episodes=2", "shard=0/2")[0] == 0
    assert wm4d(capsys, *args, "episodes=2", "shard=1/2")[0] == 0  # shards share the directory
    rows = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert sorted(r["episode"] for r in rows) == [0, 1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["planner_config"]["_target_"].endswith("HeuristicPushPolicy")
    before = tree_digest(out)
    code, err = wm4d(capsys, *args, "episodes=2", "env.start=full")
    assert code == 2 and "env_kwargs.start: store 'near_goal', this run 'full'" in err
    code, err = wm4d(capsys, *args, "episodes=2", "planner=mppi", "dynamics=oracle")
    assert code == 2 and "another configuration" in err
    assert tree_digest(out) == before
    assert wm4d(capsys, *args, "episodes=3")[0] == 0  # the same command resumes and extends
    assert json.loads((out / "summary.json").read_text())["episodes"] == 3


def test_failed_jobs_leave_no_output(tmp_path, capsys):
    failing = [
        ["eval", "planner=primitive", "dynamics=bogus", "env.robot=panda_hand", "episodes=1", "max_steps=3"],
        ["eval", "checkpoint=/no/such/dir", "episodes=1", "max_steps=3"],
        ["eval-model", "checkpoint=pretrained", f"data={tmp_path / 'missing.zarr'}"],
        ["mpm-demo", "scene=bogus"],
        ["estimate-material", f"data={tmp_path / 'missing.zarr'}"],
        ["export", f"data={tmp_path / 'missing.zarr'}"],
    ]
    for args in failing:
        out = tmp_path / "out"
        code, err = wm4d(capsys, *args, f"out={out}")
        assert code == 2, (args, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists(), args
    # an existing output directory keeps what it held before the failed run
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "mine.txt").write_text("x")
    assert wm4d(capsys, "mpm-demo", "scene=bogus", f"out={keep}")[0] == 2
    assert sorted(p.name for p in keep.iterdir()) == ["mine.txt"]


def test_every_job_has_help():
    for job in available_jobs():
        done = subprocess.run([sys.executable, "-m", "worldmodel.cli.main", job, "--help"], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (job, done.stderr)
        assert "Traceback" not in done.stderr and "options (default):" in done.stdout, job
        assert "out=" in done.stdout, job
    text = subprocess.run([sys.executable, "-m", "worldmodel.cli.main", "collect", "--help"], capture_output=True,
                          text=True, timeout=120).stdout
    assert "episodes=20" in text and "# episodes in the store" in text and "policy=random_push" in text


def test_every_job_option_has_a_meaning():
    from omegaconf import OmegaConf

    from worldmodel.cli.main import compose_config
    from worldmodel.cli.options import _leaves, option_meanings, task_ids

    cases = [(job, []) for job in available_jobs()] + [("collect", [f"env_id={t}"]) for t in task_ids()]
    for job, overrides in cases:
        cfg = compose_config(job, overrides)
        meanings = option_meanings(job, cfg, overrides)  # the job's file, its group files, the task's env file
        options = [k for k, _ in _leaves("", OmegaConf.to_container(cfg, resolve=False))]
        lacking = [k for k in options if k not in meanings
                   and not k.startswith("materials.")]  # splat-sim's material table: one entry per material
        assert not lacking, (job, overrides, lacking)


def test_every_key_of_every_config_group_file_has_a_meaning():
    from pathlib import Path

    import yaml

    from worldmodel.cli.options import _leaves, yaml_comments

    conf = Path(__file__).resolve().parents[2] / "worldmodel" / "cli" / "conf"
    files = sorted(p for p in conf.glob("*/*.yaml"))
    assert {p.parent.name for p in files} >= {"env", "dynamics", "planner", "policy", "model", "trainer"}
    for path in files:
        text = path.read_text()
        meanings, data = yaml_comments(text), yaml.safe_load(text)
        keys = {k for k, _ in _leaves("", data)}
        parents = {".".join(k.split(".")[:i]) for k in keys for i in range(1, k.count(".") + 1)}
        lacking = sorted(k for k in keys | parents if k not in meanings)
        assert not lacking, (path.relative_to(conf), lacking)
