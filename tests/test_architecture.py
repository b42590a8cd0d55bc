"""The package's layout rules (docs/architecture.md), checked on the source: imports point one way,
no module reaches into another subpackage's private names, and every doctest in the package runs."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import redundancy

SRC = Path(redundancy.__file__).parent

# Which subpackages each subpackage may import (docs/architecture.md draws the same graph). The
# root's shared helpers (_serial, _torch, _progress, _lock) are open to all and import no subpackage.
ALLOWED: dict[str, set[str]] = {
    "data": set(),
    "store": set(),
    "select": set(),
    "rigour": set(),
    "extract": {"data", "store"},
    "general": {"store", "rigour"},
    "probe": {"data", "store", "select", "rigour"},
    "pipeline": {"data", "store", "general", "probe", "select", "rigour"},
    "compact": {"data", "store", "extract", "probe", "pipeline", "rigour"},
    "finetune": {"data", "store", "extract", "probe"},
    "ablate": {"data", "store", "extract", "probe"},
    "report": {"data", "store", "general", "probe", "select", "rigour", "ablate", "pipeline", "compact"}
    | {"finetune"},
    # running stages on an engine (local or Ray): the stages it distributes
    "scale": {"data", "store", "extract", "general", "probe"},
    # job wires every stage; cli parses for all of them and calls job
    "job": {"data", "store", "extract", "general", "probe", "select", "ablate", "pipeline", "compact"}
    | {"finetune", "report", "rigour", "scale"},
}
ALLOWED["cli"] = ALLOWED["job"] | {"job"}
SHARED = {"_serial", "_torch", "_progress", "_lock"}


def _owner(path: Path, src: Path) -> str | None:
    """The subpackage a file belongs to (None for the root's own modules)."""
    parts = path.relative_to(src).parts
    return parts[0] if len(parts) > 1 else None


def _imports(path: Path, src: Path):
    """``(line, absolute module, imported names)`` for every import in ``path``, lazy ones included."""
    package = ["redundancy", *path.relative_to(src).parts[:-1]]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module, tuple(a.name for a in node.names)


def _resolve(module: str, names: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Each imported thing as a path of parts below ``redundancy`` (``from redundancy import x`` -> (x,))."""
    parts = tuple(module.split("."))[1:]
    if parts:
        return [parts] if not names else [(*parts, n) for n in names]
    return [(n,) for n in names]


def _violations(src: Path = SRC) -> tuple[list[str], list[str]]:
    direction, private = [], []
    for path in sorted(src.rglob("*.py")):
        owner = _owner(path, src)
        where = path.relative_to(src.parent)
        for line, module, names in _imports(path, src):
            if module != "redundancy" and not module.startswith("redundancy."):
                continue
            for target in _resolve(module, names):
                top = target[0]
                if top in SHARED or top == "__version__" or top == owner:
                    continue
                if owner is not None and top not in ALLOWED.get(owner, set()):
                    direction.append(f"{where}:{line}: {owner} imports {'.'.join(target)}")
                if any(p.startswith("_") for p in target[1:]):
                    private.append(f"{where}:{line}: imports private redundancy.{'.'.join(target)}")
    return direction, private


def test_every_subpackage_has_a_rule():
    packages = {p.parent.name for p in SRC.glob("*/__init__.py")}
    assert packages == set(ALLOWED)


def test_imports_point_one_way():
    direction, _ = _violations()
    assert direction == []


def test_no_private_reach_ins():
    _, private = _violations()
    assert private == []


def test_the_checker_sees_a_violation(tmp_path):
    """The rules above are not vacuous: a planted reach-in and a backward import are both caught,
    an allowed public import is not."""
    fake = tmp_path / "redundancy"
    (fake / "store").mkdir(parents=True)
    (fake / "probe").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "store" / "__init__.py").write_text("from ..probe._task import ProbeTask\n")
    (fake / "probe" / "_x.py").write_text("def f():\n    from redundancy.store import ActivationStore\n")
    direction, private = _violations(fake)
    assert direction == ["redundancy/store/__init__.py:1: store imports probe._task.ProbeTask"]
    assert private == ["redundancy/store/__init__.py:1: imports private redundancy.probe._task.ProbeTask"]


def _all_module_names() -> list[str]:
    names = ["redundancy"]
    for info in pkgutil.walk_packages([str(SRC)], prefix="redundancy."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _all_module_names())
def test_doctests(name):
    """Every doctest of every module runs (examples marked ``+SKIP`` need real weights or data)."""
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctests of {name} failed"
