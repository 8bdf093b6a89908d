"""``wm4d <job> key=value ...``: the application layer of worldmodel4d.

Each job is a module ``worldmodel.cli.jobs.<job>`` (dashes become underscores) with a
``run(cfg: DictConfig) -> None`` function and a hydra config ``worldmodel/cli/conf/<job>.yaml``.
Jobs are imported lazily, so ``wm4d collect`` never imports the MPM solver and vice versa.
Everything after the job name is a hydra override (``env.robot=panda_hand episodes=20``);
``wm4d <job> --help`` lists a job's options with their defaults.

A user mistake (a bad value, an unknown env, a missing file) is reported in one line and exits
with status 2; a job that fails leaves no output behind except the committed progress of a
resumable job (a store's episodes, an evaluation's episodes, a training checkpoint).
``WM4D_DEBUG=1`` shows the full traceback of any error.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import sys
from pathlib import Path
from typing import Callable, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict

from .options import job_help, task_env

CONF_MODULE = "worldmodel.cli.conf"
JOBS_PACKAGE = "worldmodel.cli.jobs"
SNAPSHOT_LIMIT = 20000  # entries under ``out`` beyond which a failed run's new files are not tracked

def _is_store(path: Path) -> bool:
    from worldmodel.data.schema import is_store  # imported with the job, not with the command line

    return is_store(path)


# Resumable jobs keep their output after a failure once it holds committed progress.
PROGRESS: dict[str, Callable[[Path], bool]] = {
    "collect": _is_store,
    "eval": lambda out: (out / "episodes.jsonl").exists(),
    "train": lambda out: (out / "model.safetensors").exists(),
    "reproduce": lambda out: out.is_dir() and any(out.iterdir()),
}


def available_jobs() -> list[str]:
    """Names of the jobs that ``wm4d`` can run (modules in ``worldmodel.cli.jobs``)."""
    jobs = importlib.import_module(JOBS_PACKAGE)
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(jobs.__path__) if not m.name.startswith("_"))


def _is_env_override(override: str) -> bool:
    """Whether a command-line override sets the env's kwargs (``env.<kwarg>=value``, ``env={...}``, ``~env.k``)."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key == "env" or key.startswith("env.")


def _apply_env_overrides(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Apply ``env.*`` overrides to ``cfg`` in order, as hydra's ``++env.<kwarg>=value`` (``~env.<kwarg>``:
    remove it): any keyword argument of the env may be named, listed in the config or not."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for o in OverridesParser.create().parse_overrides(list(overrides)):
        key = o.key_or_group
        with open_dict(cfg):
            if o.is_delete():
                parent, _, leaf = key.rpartition(".")
                node = OmegaConf.select(cfg, parent) if parent else None
                if not isinstance(node, DictConfig) or leaf not in node:
                    raise ValueError(f"cannot remove {key}: the config has no such env kwarg")
                del node[leaf]
            else:
                OmegaConf.update(cfg, key, o.value(), merge=True, force_add=True)


def compose_config(job: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose the hydra config of ``job`` with command-line style ``overrides``.

    A job with ``env_id`` starts its ``env`` from the task's ``conf/env/<env_id>.yaml`` (`options.task_env`:
    the task's common kwargs and the job's own entry), then the job file's ``env`` block, then the
    ``env.<kwarg>=value`` overrides: they may name any keyword argument of the env, whether or not
    the config lists it (added or overridden, as hydra's ``++env.<kwarg>`` would; the last one given wins).
    """
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        cfg = compose(config_name=job.replace("-", "_"), overrides=[o for o in overrides if not _is_env_override(o)])
    if "env" not in cfg:
        if any(_is_env_override(o) for o in overrides):  # let hydra report the key the job does not have
            with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
                return compose(config_name=job.replace("-", "_"), overrides=list(overrides))
        return cfg
    defaults = task_env(job, str(cfg.env_id)) if "env_id" in cfg else None
    if defaults:
        with open_dict(cfg):
            cfg.env = OmegaConf.merge(defaults, cfg.env)
    _apply_env_overrides(cfg, [o for o in overrides if _is_env_override(o)])
    return cfg


def _snapshot(out: Path) -> set[str] | None:
    """Paths under ``out`` (``out`` itself included) before a run, or None when there are too many to track."""
    if not out.exists():
        return set()
    found = {str(out)}
    for root, dirs, files in os.walk(out):
        found.update(os.path.join(root, n) for n in dirs + files)
        if len(found) > SNAPSHOT_LIMIT:
            return None
    return found


def _remove_new(out: Path, before: set[str]) -> None:
    """Delete what a failed run created under ``out`` (deepest first), leaving what was there before."""
    if str(out) not in before and out.exists():
        shutil.rmtree(out) if out.is_dir() and not out.is_symlink() else out.unlink()
        return
    for root, dirs, files in os.walk(out, topdown=False):
        for name in files + dirs:
            path = os.path.join(root, name)
            if path not in before:
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) and not os.path.islink(path) \
                    else os.unlink(path)


def run_job(job: str, overrides: Sequence[str] = (), configure_process: bool = False) -> None:
    """Compose the config of ``job`` and run it in this process (a failed run's new output is removed).

    ``configure_process`` (the ``wm4d`` command does it) first sets the process's CPU threads from the
    job's ``threads`` option (`worldmodel.runtime.configure_threads`), before the job imports torch.
    """
    jobs = available_jobs()
    if job not in jobs:
        raise ValueError(f"unknown job {job!r}; available jobs: {', '.join(jobs)}")
    cfg = compose_config(job, overrides)
    if configure_process and "threads" in cfg:
        from worldmodel.runtime import configure_threads

        configure_threads(cfg.threads)
    module = importlib.import_module(f"{JOBS_PACKAGE}.{job.replace('-', '_')}")
    out = Path(str(cfg.out)) if cfg.get("out") else None
    before = _snapshot(out) if out is not None else None
    try:
        module.run(cfg)
    except BaseException:
        if before is not None and not (job in PROGRESS and PROGRESS[job](out)):
            _remove_new(out, before)
        raise


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean a user mistake: reported in one line, no traceback."""
    import gymnasium.error
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, gymnasium.error.Error,
            HydraException, OmegaConfBaseException)


def _one_line(err: BaseException) -> str:
    """The user-facing message of ``err``: hydra's wrapped cause when there is one, on one line."""
    while err.__cause__ is not None and type(err).__module__.startswith(("hydra", "omegaconf")):
        err = err.__cause__
    text = " ".join(str(err).split()) or type(err).__name__
    return text if isinstance(err, (ValueError, FileExistsError)) else f"{type(err).__name__}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``wm4d``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        print("jobs: " + ", ".join(available_jobs()))
        return 0
    job, rest = args[0], args[1:]
    if any(a in ("-h", "--help") for a in rest):
        if job not in available_jobs():
            print(f"wm4d: error: unknown job {job!r}; available jobs: {', '.join(available_jobs())}", file=sys.stderr)
            return 2
        given = [a for a in rest if a not in ("-h", "--help")]
        try:
            print(job_help(job, compose_config(job, given), given))
        except _user_errors() as err:
            print(f"wm4d {job}: error: {_one_line(err)}", file=sys.stderr)
            return 2
        return 0
    try:
        run_job(job, rest, configure_process=True)
    except KeyboardInterrupt:
        print(f"wm4d {job}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as err:
        if os.environ.get("WM4D_DEBUG"):
            raise
        print(f"wm4d {job}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
