"""The layout holds: imports point one way, no circles, no private names across modules, no Streamlit in sim.

Read from the source with ``ast`` (every import, at module level or inside a function):

* the layers, from the bottom: ``sim.errors``, ``sim.words`` and ``sim.model`` -> ``sim.engines`` ->
  ``sim.runner`` -> ``sim.questions`` and ``sim.crm`` -> ``sim.cli`` and ``sim.warmup``;
  a module imports only from its own layer or those below;
* no circle of imports between modules;
* no name that starts with an underscore imported from another module;
* nothing in ``sim`` imports Streamlit or ``ui``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

SIM = ROOT / "sim"
LAYERS = {
    "sim.errors": 0,
    "sim.words": 0,
    "sim.model": 0,
    "sim.engines": 1,
    "sim.runner": 2,
    "sim.questions": 3,
    "sim.crm": 3,
    "sim.cli": 4,
    "sim.warmup": 4,
    "sim.__main__": 5,
    "sim": 5,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return LAYERS[module]


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """Each import of a file: the module and the names taken from it ([] for ``import x``)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            out.append((base, [alias.name for alias in node.names]))
    return out


MODULES = {module_name(path): path for path in sorted(SIM.rglob("*.py"))}


def sim_targets(module: str, names: list[str]) -> list[str]:
    """The sim modules an import reaches (``from sim.engines import vectorized`` reaches the submodule)."""
    if module != "sim" and not module.startswith("sim."):
        return []
    submodules = [f"{module}.{name}" for name in names if f"{module}.{name}" in MODULES]
    return submodules or [module]


GRAPH = {
    name: sorted({t for module, names in imports(path) for t in sim_targets(module, names) if t != name})
    for name, path in MODULES.items()
}


@pytest.mark.parametrize("name", [m for m in MODULES if m not in ("sim", "sim.__main__")])
def test_a_module_imports_only_its_own_layer_or_those_below(name):
    above = [target for target in GRAPH[name] if layer(target) > layer(name)]
    assert not above, f"{name} (layer {layer(name)}) imports {above} from a layer above"


def test_no_circle_of_imports():
    # A package's __init__ re-exports its modules: it is not a place a circle can pass through twice.
    graph = {m: [t for t in targets if not MODULES[t].name == "__init__.py"] for m, targets in GRAPH.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in graph.get(node, []):
            if state.get(target) == 1:
                raise AssertionError(" -> ".join([*path[path.index(target) :], target]))
            if target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_no_private_name_is_imported_from_another_module():
    private = [
        f"{name} imports {module}.{n}"
        for name, path in MODULES.items()
        for module, names in imports(path)
        for n in names
        if (module == "sim" or module.startswith("sim.")) and n.startswith("_")
    ]
    assert not private


def test_sim_never_imports_streamlit_or_the_app():
    for name, path in MODULES.items():
        for module, _ in imports(path):
            assert not module.startswith(("streamlit", "ui")), f"{name} imports {module}"
