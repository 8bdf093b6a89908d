"""``wm4d <job> --help``: a job's options, their defaults and one-line meanings, read from its hydra config.

The meanings are the trailing comments of the job's ``conf/<job>.yaml``, of the chosen
config-group files and, for ``env.*``, of the task's ``conf/env/<env_id>.yaml``; the description
is the first paragraph of the job module's docstring.

A job whose config has ``env_id`` and ``env`` starts its ``env`` from the task's file (`task_env`):
``conf/env/<env_id>.yaml`` holds ``kwargs`` (the env kwargs users commonly override, at the env's
own defaults) and ``jobs`` (per job, the kwargs it sets differently).
"""

from __future__ import annotations

import importlib
import re
from importlib import resources
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

CONF_PACKAGE = "worldmodel.cli.conf"
ENV_GROUP = "env"  # conf/env/<env_id>.yaml: one file per task
_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


def yaml_comments(text: str) -> dict[str, str]:
    """Dotted key -> trailing comment of each ``key: value  # comment`` line of a YAML document."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        m = _KEY_LINE.match(line)
        if not m or line.lstrip().startswith("-"):
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [m["key"]])
        stack.append((indent, m["key"]))
        rest = m["rest"]
        if "#" in rest and rest.count('"', 0, rest.index("#")) % 2 == 0:
            comments[dotted] = rest[rest.index("#") + 1:].strip()
    return comments


def _conf_text(name: str) -> str:
    path = resources.files(CONF_PACKAGE).joinpath(name)
    return path.read_text() if path.is_file() else ""


def task_ids() -> list[str]:
    """The tasks with a ``conf/env/<env_id>.yaml`` file."""
    folder = resources.files(CONF_PACKAGE).joinpath(ENV_GROUP)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def task_env(job: str, env_id: str) -> dict[str, Any] | None:
    """The env kwargs ``wm4d <job>`` starts from for ``env_id``: ``kwargs`` of ``conf/env/<env_id>.yaml``
    updated by its ``jobs.<job>`` entry; None when the package has no file for that task (the env's own
    defaults apply, and the job reports an unknown ``env_id``)."""
    if env_id not in task_ids():  # also keeps env_id from naming any other file
        return None
    text = _conf_text(f"{ENV_GROUP}/{env_id}.yaml")
    data = OmegaConf.to_container(OmegaConf.create(text), resolve=False) if text.strip() else {}
    if not isinstance(data, dict) or not set(data) <= {"kwargs", "jobs"}:
        raise ValueError(f"conf/{ENV_GROUP}/{env_id}.yaml holds kwargs and jobs only, got {sorted(data)}")
    kwargs, jobs = data.get("kwargs") or {}, data.get("jobs") or {}
    return {**kwargs, **(jobs.get(job) or {})}


def env_comments(job: str, env_id: str) -> dict[str, str]:
    """``env.<kwarg>`` -> the comment of that kwarg in ``conf/env/<env_id>.yaml`` (the job's entry wins)."""
    if env_id not in task_ids():
        return {}
    found = yaml_comments(_conf_text(f"{ENV_GROUP}/{env_id}.yaml"))
    out = {f"env.{k[len('kwargs.'):]}": v for k, v in found.items() if k.startswith("kwargs.")}
    prefix = f"jobs.{job}."
    out.update({f"env.{k[len(prefix):]}": v for k, v in found.items() if k.startswith(prefix)})
    return out


def config_groups(job_yaml: str) -> dict[str, list[str]]:
    """Config groups named in a job's ``defaults`` list -> the choices available in ``conf/<group>/``."""
    groups: dict[str, list[str]] = {}
    for m in re.finditer(r"^\s*-\s*(?P<group>[\w/]+)\s*:\s*(?P<choice>[\w-]+)", job_yaml, flags=re.M):
        folder = resources.files(CONF_PACKAGE).joinpath(m["group"])
        if folder.is_dir():
            groups[m["group"]] = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return groups


def _leaves(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(f"{prefix}.{k}" if prefix else str(k), v)]
    return [(prefix, value)]


def _format(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    return str(value)


def group_choices(job: str, overrides: Sequence[str] = ()) -> dict[str, str]:
    """The choice of each config group of ``job``: its default, or ``group=choice`` among ``overrides``."""
    text = _conf_text(f"{job.replace('-', '_')}.yaml")
    chosen = {group: _group_choice(text, group) for group in config_groups(text)}
    for o in overrides:
        key, _, value = o.partition("=")
        if key in chosen and value:
            chosen[key] = value
    return chosen


def option_meanings(job: str, cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[str, str]:
    """Dotted option -> one-line meaning, for the options of ``job``'s composed config ``cfg``: the comments
    of the job's file, of each chosen group file and, for ``env.*``, of the task's file."""
    meanings = yaml_comments(_conf_text(f"{job.replace('-', '_')}.yaml"))
    for group, choice in group_choices(job, overrides).items():
        for key, note in yaml_comments(_conf_text(f"{group}/{choice}.yaml")).items():
            meanings.setdefault(f"{group}.{key}", note)
    if "env_id" in cfg and "env" in cfg:
        for key, note in env_comments(job, str(cfg.env_id)).items():
            meanings.setdefault(key, note)
    return meanings


def job_help(job: str, cfg: DictConfig, overrides: Sequence[str] = ()) -> str:
    """The ``--help`` text of ``job`` whose config, composed with ``overrides``, is ``cfg``."""
    name = job.replace("-", "_")
    module = importlib.import_module(f"worldmodel.cli.jobs.{name}")
    doc = (module.__doc__ or "").strip().split("\n\n")[0]
    text = _conf_text(f"{name}.yaml")
    groups = config_groups(text)
    chosen = group_choices(job, overrides)
    comments = option_meanings(job, cfg, overrides)
    values = OmegaConf.to_container(cfg, resolve=False)
    lines = [doc, "", f"usage: wm4d {job} key=value ...  (hydra overrides; ??? = required)", ""]
    if groups:
        lines.append("config groups (group=choice):")
        for group, choices in groups.items():
            lines.append(f"  {group}={chosen[group]}    choices: {', '.join(choices)}")
        lines.append("")
    lines.append("options (default):")
    rows = [(k, _format(v)) for k, v in _leaves("", values)]
    width = min(40, max(len(f"{k}={v}") for k, v in rows) + 2)
    for key, shown in rows:
        note = comments.get(key, "")
        item = f"  {key}={shown}"
        lines.append(f"{item:<{width + 2}} {('# ' + note) if note else ''}".rstrip())
    if "env" in values:
        lines += ["", "env.<kwarg>=value sets any keyword argument of the env (see the env's docstring)."]
    if "env_id" in values:
        lines.append(f"env_id=<task> starts env from conf/{ENV_GROUP}/<task>.yaml; tasks: {', '.join(task_ids())}")
    return "\n".join(lines)


def _group_choice(job_yaml: str, group: str) -> str:
    m = re.search(rf"^\s*-\s*{re.escape(group)}\s*:\s*([\w-]+)", job_yaml, flags=re.M)
    return m.group(1) if m else ""


def require_positive_ints(cfg: DictConfig, *keys: str) -> None:
    """ValueError naming the first of ``keys`` whose value in ``cfg`` is not a positive integer."""
    for key in keys:
        value = cfg[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
