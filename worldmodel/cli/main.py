"""``wm4d <job> key=value ...``: the application layer of worldmodel4d.

Each job is a module ``worldmodel.cli.jobs.<job>`` (dashes become underscores) with a
``run(cfg: DictConfig) -> None`` function and a hydra config ``worldmodel/cli/conf/<job>.yaml``.
Jobs are imported lazily, so ``wm4d collect`` never imports the MPM solver and vice versa.
Everything after the job name is a hydra override (``env.robot=panda_hand episodes=20``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Sequence

from omegaconf import DictConfig

CONF_MODULE = "worldmodel.cli.conf"
JOBS_PACKAGE = "worldmodel.cli.jobs"


def available_jobs() -> list[str]:
    """Names of the jobs that ``wm4d`` can run (modules in ``worldmodel.cli.jobs``)."""
    jobs = importlib.import_module(JOBS_PACKAGE)
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(jobs.__path__) if not m.name.startswith("_"))


def compose_config(job: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose the hydra config of ``job`` with command-line style ``overrides``.

    ``env.<kwarg>=value`` may name any keyword argument of the env, whether or not the job's
    config lists it (it is appended, as hydra's ``+env.<kwarg>`` would).
    """
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        name = job.replace("-", "_")
        base = compose(config_name=name)
        env_keys = set(base.env.keys()) if "env" in base else set()
        fixed = []
        for o in overrides:
            key = o.split("=", 1)[0]
            if key.startswith("env.") and key[4:] not in env_keys and "env" in base:
                o = "+" + o
            fixed.append(o)
        return compose(config_name=name, overrides=fixed)


def run_job(job: str, overrides: Sequence[str] = ()) -> None:
    """Compose the config of ``job`` and run it in this process."""
    jobs = available_jobs()
    if job not in jobs:
        raise ValueError(f"unknown job {job!r}; available jobs: {', '.join(jobs)}")
    cfg = compose_config(job, overrides)
    module = importlib.import_module(f"{JOBS_PACKAGE}.{job.replace('-', '_')}")
    module.run(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``wm4d``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        print("jobs: " + ", ".join(available_jobs()))
        return 0
    try:
        run_job(args[0], args[1:])
    except ValueError as err:
        print(f"wm4d {args[0]}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
