"""``wm4d <job> --help``: a job's options, their defaults and one-line meanings, read from its hydra config.

The meanings are the trailing comments of the job's ``conf/<job>.yaml`` (and of the chosen
config-group files); the description is the first paragraph of the job module's docstring.
"""

from __future__ import annotations

import importlib
import re
from importlib import resources
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONF_PACKAGE = "worldmodel.cli.conf"
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


def job_help(job: str, cfg: DictConfig) -> str:
    """The ``--help`` text of ``job`` whose default config is ``cfg``."""
    name = job.replace("-", "_")
    module = importlib.import_module(f"worldmodel.cli.jobs.{name}")
    doc = (module.__doc__ or "").strip().split("\n\n")[0]
    text = _conf_text(f"{name}.yaml")
    groups = config_groups(text)
    comments = yaml_comments(text)
    for group in groups:
        for key, note in yaml_comments(_conf_text(f"{group}/{_group_choice(text, group)}.yaml")).items():
            comments.setdefault(f"{group}.{key}", note)
    values = OmegaConf.to_container(cfg, resolve=False)
    lines = [doc, "", f"usage: wm4d {job} key=value ...  (hydra overrides; ??? = required)", ""]
    if groups:
        lines.append("config groups (group=choice):")
        for group, choices in groups.items():
            lines.append(f"  {group}={_group_choice(text, group)}    choices: {', '.join(choices)}")
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
