"""The layers of DESIGN §2 hold and no module imports itself back through others.

Every ``import`` statement of the five packages is read from the source (imports inside
functions count too); relative imports are resolved. ``worldmodel.cli`` is the application layer
and may import everything; no library module may import it.
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("robots", "physics", "envs", "worldmodel", "policies")
APP = "worldmodel.cli"
ALLOWED = {  # the packages each layer may import (besides itself)
    "robots": set(),
    "physics": {"robots"},
    "envs": {"robots", "physics"},
    "worldmodel": {"robots"},
    "policies": {"robots", "physics", "envs", "worldmodel"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports (as written, relative imports resolved)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            mod = module_name(path)
            base = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    prefix = base[: len(base) - node.level + 1] if node.level else []
                    target = ".".join(prefix + ([node.module] if node.module else []))
                    names = [target] + [f"{target}.{a.name}" for a in node.names]
                else:
                    continue
                graph[mod].update(n for n in names if n.split(".")[0] in PACKAGES)
    return graph


def resolve(graph: dict[str, set[str]], name: str) -> str | None:
    """The project module that ``name`` (a module or ``module.attribute``) refers to."""
    while name and name not in graph:
        name = name.rpartition(".")[0]
    return name or None


def test_layers_hold():
    wrong = []
    for mod, targets in project_imports().items():
        layer = mod.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if target.startswith(APP) and not mod.startswith(APP):
                wrong.append(f"{mod} -> {target} (library code imports the command line)")
            elif other != layer and other not in ALLOWED[layer] and not mod.startswith(APP):
                wrong.append(f"{mod} -> {target} ({layer} may import {sorted(ALLOWED[layer]) or 'nothing of ours'})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = project_imports()
    edges = {m: {r for t in ts if (r := resolve(graph, t)) and r != m} for m, ts in graph.items()}
    # a package's __init__ re-exporting its submodules is not a cycle of theirs: drop edges into parents
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in edges.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for mod in sorted(edges):
        if mod not in state:
            visit(mod, [mod])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_contract_sees_function_level_imports():
    graph = project_imports()
    assert "worldmodel.data.writer" in graph["worldmodel.cli.jobs.collect"]  # inside run
    assert any(t.startswith("worldmodel.runtime") for t in graph["worldmodel.cli.main"])  # inside run_job
