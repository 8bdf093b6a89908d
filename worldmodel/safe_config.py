"""Checked instantiation of configs the package did not write itself (checkpoints, stores, recipes).

Hydra's ``instantiate`` calls whatever ``_target_`` names. A checkpoint's ``config.json``, a
rollout store's attributes or a recipe is data a user may have downloaded, so before such a
config reaches ``instantiate`` every ``_target_`` in it, at any depth (inside ``_args_``,
``_partial_`` configs, nested dicts and lists), must be one of the package's own classes,
listed here by exact dotted path (strings: ``worldmodel`` imports neither ``policies`` nor
``physics``), and no string may hold an OmegaConf interpolation (``${...}``: resolvers such as
``oc.decode`` would build new configs after the check). A composed hydra config (``DictConfig``)
is resolved first and its result checked the same way::

    from worldmodel.safe_config import instantiate_checked
    model = instantiate_checked(config["model"], "model")      # ValueError for anything else

Code that may run anything anyway (a user's own script) can add its classes with
``register("model", "mypackage.MyFlowModel")``; nothing read from a file can.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

_REGISTRY: dict[str, set[str]] = {
    "model": {"worldmodel.models.PointNetFlow", "worldmodel.models.PointFlowTransformer"},
    "trainer": {"worldmodel.training.TrainConfig"},
    "policy": {"policies.scripted.RandomPushPolicy", "policies.scripted.HeuristicPushPolicy",
               "policies.poke.RandomPokePolicy", "policies.poke.DampingPokePolicy"},
    "planner": {"policies.planners.CEM", "policies.planners.MPPI", "policies.planners.PlannerConfig",
                "policies.primitives.PrimitiveMPC", "policies.primitives.PrimitiveConfig"},
    "dynamics": {"worldmodel.dynamics.LearnedDynamics.from_checkpoint", "policies.dynamics.OracleDynamics"},
    "cost": {"policies.mpc.FlowCost"},
    "material": {f"physics.mpm.materials.{name}" for name in (
        "FixedCorotated", "NeoHookean", "VonMises", "DruckerPrager", "HerschelBulkley", "Fluid", "Snow")},
}


def kinds() -> list[str]:
    """Names of the registries (``model``, ``trainer``, ``policy``, ``planner``, ``dynamics``, ``cost``,
    ``material``)."""
    return sorted(_REGISTRY)


def allowed_targets(*kinds_: str) -> frozenset[str]:
    """The dotted class paths allowed for the union of the registries ``kinds_``."""
    unknown = [k for k in kinds_ if k not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown target registries {unknown}; registries: {', '.join(kinds())}")
    return frozenset().union(*(_REGISTRY[k] for k in kinds_))


def register(kind: str, target: str) -> None:
    """Allow the class at dotted path ``target`` in registry ``kind`` (a new registry if needed), for this
    process. For code that runs with the user's trust (a script, a plugin), never for anything read from a file."""
    if not isinstance(target, str) or not target or any(part == "" for part in target.split(".")):
        raise ValueError(f"target must be a dotted path such as 'package.module.Class', got {target!r}")
    _REGISTRY.setdefault(kind, set()).add(target)


def _as_allowed(allowed: str | Iterable[str]) -> frozenset[str]:
    return allowed_targets(allowed) if isinstance(allowed, str) else frozenset(allowed)


def plain(config: Any) -> Any:
    """``config`` as plain dicts and lists: an OmegaConf config is resolved (its interpolations come from the
    code or package files that composed it), anything else is returned as it is."""
    if isinstance(config, (DictConfig, ListConfig)):
        try:
            return OmegaConf.to_container(config, resolve=True)
        except Exception as err:
            raise ValueError(f"config cannot be resolved: {err}") from err
    return config


def _walk(node: Any, where: str) -> Iterable[tuple[str, Any, Any]]:
    """(location, key, value) of every mapping entry and list item below ``node``, depth first."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            at = f"{where}.{key}"
            yield at, key, value
            yield from _walk(value, at)
    elif isinstance(node, Sequence) and not isinstance(node, (str, bytes)):
        for i, value in enumerate(node):
            at = f"{where}[{i}]"
            yield at, i, value
            yield from _walk(value, at)


def targets_in(config: Any) -> list[str]:
    """Every ``_target_`` value in ``config`` (any depth, unresolved), in document order."""
    if isinstance(config, (DictConfig, ListConfig)):
        config = OmegaConf.to_container(config, resolve=False)
    return [value for _, key, value in _walk(config, "") if key == "_target_"]


def check_config(config: Any, allowed: str | Iterable[str], where: str = "config") -> None:
    """Raise ``ValueError`` unless every ``_target_`` in ``config`` (any depth) is in ``allowed`` (a registry
    name or a set of dotted paths) and no string in it holds an interpolation ``${...}``; ``where`` names
    the config's source in the message. An OmegaConf config is checked as `plain` resolves it."""
    targets = _as_allowed(allowed)
    for at, key, value in _walk(plain(config), where):
        if key == "_target_":
            if not isinstance(value, str) or value not in targets:
                raise ValueError(f"{at} = {value!r} is not allowed: only the package's own classes are built from "
                                 f"a config; allowed here: {', '.join(sorted(targets)) or 'none'}")
        elif isinstance(value, str) and "${" in value:
            raise ValueError(f"{at} = {value!r}: interpolations (${{...}}) are not allowed in a config read from "
                             f"a file")
        if isinstance(key, str) and "${" in key:
            raise ValueError(f"{at}: interpolations (${{...}}) are not allowed in a config read from a file")


def instantiate_checked(config: Any, allowed: str | Iterable[str], where: str = "config", **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(config, **kwargs)`` after `check_config` (``kwargs`` come from the caller and
    are trusted)."""
    from hydra.utils import instantiate

    config = plain(config)
    check_config(config, allowed, where)
    return instantiate(config, **kwargs)
