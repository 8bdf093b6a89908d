"""``wm4d reproduce name=<recipe>``: rerun a recipe, e.g. the one that made a shipped checkpoint.

Recipes are a shipped checkpoint's ``recipe.yaml`` or the files of ``worldmodel/recipes/``
(recipes for data no checkpoint ships, e.g. deformable blocks). A recipe lists the ``wm4d``
commands that make it as override lists: ``collect`` (one entry per store), ``train`` and
``eval`` (held-out stores first collected by ``eval_collect``); ``train`` is one override
list, or a list of them for a staged run (each stage resumes the same run directory, e.g. with
``trainer.stop_at`` and more data in a later stage). An optional ``shared`` maps a job name
(``collect``, ``train``, ``eval-model``) to the overrides every command of that job starts from: a
command is ``shared[job]`` followed by its own overrides, and its own value of a key replaces the
shared one. ``{out}`` in an override stands for this run's output directory. Every stage resumes
(collect with ``resume=true``, train from its last checkpoint), so an interrupted reproduction
continues where it stopped. At the end the fresh metrics are printed next to the shipped ones;
``threads=N`` is passed on to every command.

A recipe is data (a downloaded checkpoint directory may hold one), so before anything runs
every command is checked (`check_command`): its job is one of the three above, its overrides
hold no interpolation (``${...}``) and no ``hydra.*`` setting, the composed config builds only
the package's own classes (``worldmodel.safe_config``: policies for ``collect``, models and the
trainer settings for ``train``, nothing for ``eval-model``) and its ``out`` lies inside this
run's output directory. A recipe that fails any check runs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from omegaconf import DictConfig

STAGES = ("collect", "train", "eval")
JOB_TARGETS = {"collect": ("policy",), "train": ("model", "trainer"), "eval-model": ()}  # registries per job


def recipe_commands(recipe: dict, out: str) -> dict[str, list[tuple[str, list[str]]]]:
    """The (job, overrides) lists of each stage of ``recipe``, ``shared`` overrides included and ``{out}``
    filled in."""

    def fill(args: object) -> list[str]:
        if not isinstance(args, list) or not all(isinstance(a, (str, int, float, bool)) for a in args):
            raise ValueError(f"a recipe command is a list of key=value overrides, got {args!r}")
        return [str(a).replace("{out}", out) for a in args]

    def key(override: str) -> str:
        return override.split("=", 1)[0].lstrip("+~")

    def command(job: str, args: object) -> list[str]:
        own = fill(args)
        given = {key(o) for o in own}
        return [o for o in fill(shared.get(job, [])) if key(o) not in given] + own

    if not isinstance(recipe, dict):
        raise ValueError(f"a recipe is a mapping of stages to commands, got {type(recipe).__name__}")
    shared = recipe.get("shared") or {}
    if not isinstance(shared, dict) or not set(shared) <= set(JOB_TARGETS):
        raise ValueError(f"a recipe's shared maps job names ({', '.join(JOB_TARGETS)}) to override lists, "
                         f"got {shared!r}")
    missing = [k for k in ("collect", "train", "eval_collect", "eval") if k not in recipe]
    if missing:
        raise ValueError(f"recipe lacks {missing}; a recipe needs collect, train, eval_collect and eval")
    if not isinstance(recipe["collect"], list) or not isinstance(recipe["eval_collect"], list):
        raise ValueError("a recipe's collect and eval_collect are lists of commands")
    train = recipe["train"]
    if not train or not all(isinstance(stage, list) for stage in train):
        train = [train]
    return {
        "collect": [("collect", command("collect", a) + ["resume=true"])
                    for a in recipe["collect"] + recipe["eval_collect"]],
        "train": [("train", command("train", stage)) for stage in train],
        "eval": [("eval-model", command("eval-model", recipe["eval"]))],
    }


RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def available_recipes() -> list[str]:
    """Names of the recipes ``wm4d reproduce name=...`` runs: shipped checkpoints' and ``worldmodel/recipes/``'s."""
    from worldmodel.pretrained import CHECKPOINTS

    shipped = [p.name for p in CHECKPOINTS.iterdir() if (p / "recipe.yaml").exists()] if CHECKPOINTS.is_dir() else []
    return sorted(set(shipped) | {p.stem for p in RECIPES.glob("*.yaml")})


def find_recipe(name: str) -> tuple[Path, Path | None]:
    """The recipe file of ``name`` (a shipped checkpoint, a recipe in ``worldmodel/recipes/`` or a
    checkpoint directory) and the checkpoint directory whose metrics it reproduces, if any."""
    from worldmodel.pretrained import checkpoint_dir

    if (RECIPES / f"{name}.yaml").exists():
        return RECIPES / f"{name}.yaml", None
    try:
        ckpt = checkpoint_dir(name)
    except ValueError:
        ckpt = None
    if ckpt is None or not (ckpt / "recipe.yaml").exists():
        raise ValueError(f"no recipe named {name!r}; recipes: {', '.join(available_recipes())}")
    return ckpt / "recipe.yaml", ckpt


def check_command(job: str, overrides: list[str], out: str | Path) -> None:
    """Raise ``ValueError`` unless the recipe command ``wm4d job overrides`` is one of the package's jobs,
    builds only the package's classes and writes inside ``out`` (see the module docstring)."""
    from worldmodel.cli.main import compose_config
    from worldmodel.safe_config import allowed_targets, check_config

    if job not in JOB_TARGETS:
        raise ValueError(f"recipe names job {job!r}; a recipe runs only {', '.join(JOB_TARGETS)}")
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if "${" in o:
            raise ValueError(f"recipe override {o!r} of {job}: interpolations (${{...}}) are not allowed in a recipe")
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            raise ValueError(f"recipe override {o!r} of {job}: a recipe may not change hydra's settings")
    cfg = compose_config(job, overrides)
    check_config(cfg, allowed_targets(*JOB_TARGETS[job]), where=f"recipe command 'wm4d {job}'")
    root, dest = Path(out).resolve(), Path(str(cfg.out)).resolve()
    if not dest.is_relative_to(root):
        raise ValueError(f"recipe command 'wm4d {job}' writes to {dest}, outside this run's directory {root}")


def run(cfg: DictConfig) -> None:
    """Run the chosen stages of the recipe ``cfg.name`` into ``cfg.out``."""
    from worldmodel.cli.main import run_job

    recipe, ckpt = find_recipe(str(cfg.name))
    unknown = [s for s in cfg.stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stages {unknown}; stages are {list(STAGES)}")
    out = str(Path(cfg.out).resolve())
    commands = recipe_commands(yaml.safe_load(recipe.read_text()), out)
    threads = cfg.get("threads")
    for stage in STAGES:  # every command is checked before any runs
        if stage in cfg.stages:
            for job, overrides in commands[stage]:
                check_command(job, overrides, out)
                if threads is not None:  # the sub-jobs keep this run's thread count
                    overrides.append(f"threads={int(threads)}")
    for stage in STAGES:
        if stage in cfg.stages:
            for job, overrides in commands[stage]:
                print(f"wm4d {job} {' '.join(overrides)}", flush=True)
                run_job(job, overrides)
    fresh = Path(out) / "eval" / "metrics.json"
    shipped = ckpt / "metrics.json" if ckpt is not None else None
    if fresh.exists() and shipped is not None and shipped.exists():
        key = "moved_l2_ratio_to_zero_flow_at_H"
        a, b = json.loads(fresh.read_text()), json.loads(shipped.read_text())
        print(f"{key}: reproduced {a.get(key, float('nan')):.3f}, shipped {b.get(key, float('nan')):.3f}")
