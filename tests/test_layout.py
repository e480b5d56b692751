"""The package's import structure keeps the contracts of DESIGN.md §2: no import cycle,
descriptions (`arch/`) know no engine, reports read results only, every kind's engine exposes
exactly the engine contract."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import networkx as nx
import pytest

from accelsim.kinds import KINDS

PACKAGE = Path(__file__).resolve().parents[1] / "accelsim"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """accelsim modules a file imports anywhere in it (`from pkg import mod` names the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {name for name in found if name in MODULES}


GRAPH = nx.DiGraph((name, imported) for name, path in MODULES.items()
                   for imported in imports_of(path) if imported != name)


def test_the_reader_sees_every_module():
    assert {"accelsim.kinds", "accelsim.results", "accelsim.engines.zero_skip.kernels",
            "accelsim.report.figures"} <= set(MODULES)
    assert GRAPH.has_edge("accelsim.simulate", "accelsim.kinds")


def test_no_import_cycle():
    assert list(nx.simple_cycles(GRAPH)) == []


def within(prefix: str) -> list[str]:
    return [m for m in MODULES if m == prefix or m.startswith(prefix + ".")]


def imported_by(prefix: str) -> set[str]:
    return {t for m in within(prefix) if m in GRAPH for t in GRAPH.successors(m)}


def allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_descriptions_know_no_engine():
    outside = {m for m in imported_by("accelsim.arch")
               if not allowed(m, ("accelsim.arch", "accelsim.errors"))}
    assert outside == set()


def test_reports_read_results_only():
    outside = {m for m in imported_by("accelsim.report")
               if m != "accelsim" and not allowed(m, ("accelsim.report", "accelsim.results",
                                                      "accelsim.workload", "accelsim.errors"))}
    assert outside == set()


def test_engines_import_neither_the_registry_nor_what_runs_them():
    above = ("accelsim.kinds", "accelsim.simulate", "accelsim.compare", "accelsim.sweep",
             "accelsim.report", "accelsim.cli", "accelsim.arch.loader", "accelsim.breakeven")
    assert {m for m in imported_by("accelsim.engines") if allowed(m, above)} == set()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_engine_exposes_the_contract_only(kind):
    engine = KINDS[kind].engine
    assert typing.get_args(engine.Config.model_fields["kind"].annotation) == (kind,)
    assert callable(engine.simulate)
    if engine.__name__ in {m for m in MODULES if MODULES[m].name == "__init__.py"}:
        assert set(engine.__all__) <= {"Config", "simulate", "simulate_batch", "prepare"}
        assert {"Config", "simulate"} <= set(engine.__all__)
