"""Sweep files: parse, validate and expand into design points, before any simulation starts.

A sweep YAML names a base arch, parameters by dotted path into it (`array.lanes`,
`memory.1.size_bytes`) with either `values` (a list) or `range: [lo, hi]` (sampled), a
`sampling` block (`grid`, `random` or `latin-hypercube` with `samples` and `seed`),
`constraints` (expressions over parameter names; arithmetic, comparisons and and/or/not only)
and one or more `workloads`. Relative paths are relative to the sweep file.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import itertools
import json
import math
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from accelsim import __version__
from accelsim.errors import AccelsimError
from accelsim.kinds import parse_arch

SAMPLING_METHODS = ("grid", "random", "latin-hypercube")


class SweepError(AccelsimError):
    """An invalid sweep file."""


@dataclass(frozen=True)
class Parameter:
    """One swept field: `path` into the arch, `name` used in constraints and result columns."""

    path: str
    name: str
    values: tuple | None = None
    low: float | None = None
    high: float | None = None
    integer: bool = False
    log: bool = False

    def from_unit(self, u: float) -> Any:
        """The value at quantile `u` in [0, 1) of this parameter's list or range."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return int(min(round(value), self.high)) if self.integer else float(value)


@dataclass(frozen=True)
class Point:
    """One design point: its index in the sweep, parameter values and full arch mapping."""

    index: int
    params: dict
    arch: dict


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base arch mapping, parameters, sampling, constraints, workloads."""

    source: str
    name: str
    base: dict
    parameters: tuple[Parameter, ...]
    method: str
    samples: int
    seed: int
    constraints: tuple[str, ...]
    workloads: tuple[Path, ...]


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Eq: operator.eq, ast.NotEq: operator.ne}
_UNOPS = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}


def _check_expr(node: ast.AST, names: set[str], text: str, source: str) -> None:
    """Refuse anything but numbers, parameter names and arithmetic/comparison/boolean ops."""
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Name,
               ast.Constant, ast.Load, ast.And, ast.Or, *_BINOPS, *_CMPOPS, *_UNOPS)
    for sub in ast.walk(node):
        if not isinstance(sub, allowed):
            raise SweepError(
                f"{source}: constraint {text!r} uses {type(sub).__name__}; only numbers, "
                "parameter names, + - * / // % **, comparisons and and/or/not are allowed."
            )
        if isinstance(sub, ast.Constant) and not isinstance(sub.value, (int, float)):
            raise SweepError(f"{source}: constraint {text!r}: only numeric constants allowed.")
        if isinstance(sub, ast.Name) and sub.id not in names:
            raise SweepError(f"{source}: constraint {text!r} names '{sub.id}', which is not a "
                             f"parameter; parameters: {', '.join(sorted(names))}.")


def evaluate(node: ast.AST, env: dict) -> Any:
    """Evaluate a checked constraint tree over parameter values `env`."""
    if isinstance(node, ast.Expression):
        return evaluate(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](evaluate(node.left, env), evaluate(node.right, env))
    if isinstance(node, ast.UnaryOp):
        return _UNOPS[type(node.op)](evaluate(node.operand, env))
    if isinstance(node, ast.BoolOp):
        values = (evaluate(v, env) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    left = evaluate(node.left, env)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = evaluate(comparator, env)
        if not _CMPOPS[type(op)](left, right):
            return False
        left = right
    return True


def _lookup(tree: Any, path: str, source: str) -> None:
    node = tree
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            where = (f"keys there: {', '.join(map(str, node))}" if isinstance(node, dict)
                     else f"a list of {len(node)}" if isinstance(node, list) else "a plain value")
            raise SweepError(f"{source}: parameter path '{path}': no '{part}' in the base arch "
                             f"({where}). Use a dotted path to an existing field.")
    if isinstance(node, (dict, list)):
        raise SweepError(f"{source}: parameter path '{path}' is a whole section; name one field.")


def set_path(tree: dict, path: str, value: Any) -> None:
    """Set the field at dotted `path` (dict keys, list indices) in place."""
    parts = path.split(".")
    node: Any = tree
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _parameter(raw: Any, source: str) -> Parameter:
    if not isinstance(raw, dict) or "path" not in raw:
        raise SweepError(f"{source}: each parameter needs a mapping with 'path' and 'values' or "
                         f"'range', got {raw!r}.")
    unknown = set(raw) - {"path", "name", "values", "range", "integer", "log"}
    if unknown:
        raise SweepError(f"{source}: parameter '{raw['path']}': unknown keys {sorted(unknown)}.")
    path = str(raw["path"])
    name = str(raw.get("name", path.replace(".", "_")))
    if not name.isidentifier():
        raise SweepError(f"{source}: parameter name {name!r} is not an identifier; give 'name'.")
    if ("values" in raw) == ("range" in raw):
        raise SweepError(f"{source}: parameter '{path}': give exactly one of 'values' or 'range'.")
    if "values" in raw:
        values = raw["values"]
        if not isinstance(values, list) or not values:
            raise SweepError(f"{source}: parameter '{path}': 'values' must be a non-empty list.")
        return Parameter(path, name, values=tuple(values))
    rng = raw["range"]
    if (not isinstance(rng, list) or len(rng) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rng)
            or not rng[0] < rng[1]):
        raise SweepError(f"{source}: parameter '{path}': 'range' must be [low, high] numbers "
                         f"with low < high, got {rng!r}.")
    log = bool(raw.get("log", False))
    if log and rng[0] <= 0:
        raise SweepError(f"{source}: parameter '{path}': a log range needs low > 0.")
    integer = bool(raw.get("integer", all(isinstance(v, int) for v in rng)))
    return Parameter(path, name, low=float(rng[0]), high=float(rng[1]), integer=integer, log=log)


def _read_yaml(path: str | Path, missing: str) -> Any:
    """The content of the YAML file `path` (safe loader); raises SweepError with the message
    `missing` where there is no such file, and one naming `path` where it is not valid YAML."""
    if not Path(path).is_file():
        raise SweepError(missing)
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not valid YAML ({exc}).") from None


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file; every generated arch is validated by `expand`."""
    p = Path(path)
    raw = _read_yaml(path, f"{path}: no such sweep file.")
    source = str(path)
    if not isinstance(raw, dict):
        raise SweepError(f"{source}: the top level must be a mapping.")
    unknown = set(raw) - {"name", "base", "parameters", "sampling", "constraints", "workloads"}
    if unknown:
        raise SweepError(f"{source}: unknown keys {sorted(unknown)}; allowed: name, base, "
                         "parameters, sampling, constraints, workloads.")
    for key in ("base", "parameters", "workloads"):
        if not raw.get(key):
            raise SweepError(f"{source}: missing or empty '{key}'.")
    base_path = p.parent / str(raw["base"])
    base_raw = _read_yaml(base_path, f"{source}: base arch {base_path} does not exist.")
    base = parse_arch(base_raw, str(base_path)).model_dump(mode="json")
    if not isinstance(raw["parameters"], list):
        raise SweepError(f"{source}: 'parameters' must be a list of mappings.")
    params = tuple(_parameter(r, source) for r in raw["parameters"])
    for prm in params:
        _lookup(base, prm.path, source)
    names = [prm.name for prm in params]
    if len(set(names)) != len(names):
        raise SweepError(f"{source}: parameter names repeat: {names}.")
    sampling = raw.get("sampling") or {}
    method = str(sampling.get("method", "grid"))
    if method not in SAMPLING_METHODS:
        raise SweepError(f"{source}: sampling.method {method!r}; allowed: {SAMPLING_METHODS}.")
    samples = sampling.get("samples", 0)
    if method != "grid" and (not isinstance(samples, int) or samples <= 0):
        raise SweepError(f"{source}: sampling '{method}' needs a positive integer 'samples'.")
    if method == "grid" and any(prm.values is None for prm in params):
        raise SweepError(f"{source}: grid sampling needs 'values' lists; parameters with a "
                         "'range' need sampling.method random or latin-hypercube.")
    constraints = raw.get("constraints") or []
    if not isinstance(constraints, list):
        raise SweepError(f"{source}: 'constraints' must be a list of expressions.")
    for text in constraints:
        _compile(str(text), set(names), source)
    workloads = raw["workloads"] if isinstance(raw["workloads"], list) else [raw["workloads"]]
    paths = tuple(p.parent / str(w) for w in workloads)
    missing = [str(w) for w in paths if not w.is_file()]
    if missing:
        raise SweepError(f"{source}: workload files not found: {', '.join(missing)}.")
    return SweepSpec(source=source, name=str(raw.get("name", p.stem)), base=base,
                     parameters=params, method=method, samples=int(samples or 0),
                     seed=int(sampling.get("seed", 0)), constraints=tuple(map(str, constraints)),
                     workloads=paths)


def _compile(text: str, names: set[str], source: str) -> ast.Expression:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise SweepError(f"{source}: constraint {text!r} is not a valid expression ({exc.msg}).") \
            from None
    _check_expr(tree, names, text, source)
    return tree


def _unit_samples(spec: SweepSpec) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    n, d = spec.samples, len(spec.parameters)
    if spec.method == "random":
        return rng.random((n, d))
    strata = np.stack([rng.permutation(n) for _ in range(d)], axis=1)
    return (strata + rng.random((n, d))) / n


def expand(spec: SweepSpec) -> list[Point]:
    """All design points that pass the constraints, each arch validated; duplicates dropped."""
    if spec.method == "grid":
        combos = itertools.product(*(prm.values for prm in spec.parameters))
    else:
        combos = ([prm.from_unit(u) for prm, u in zip(spec.parameters, row, strict=True)]
                  for row in _unit_samples(spec))
    names = {prm.name for prm in spec.parameters}
    trees = [_compile(text, names, spec.source) for text in spec.constraints]
    points: list[Point] = []
    seen: set[str] = set()
    for combo in combos:
        params = {prm.name: value for prm, value in zip(spec.parameters, combo, strict=True)}
        try:
            keep = all(evaluate(tree, params) for tree in trees)
        except (ZeroDivisionError, TypeError, OverflowError) as exc:
            raise SweepError(f"{spec.source}: a constraint fails on {params} ({exc}).") from None
        key = json.dumps(params, sort_keys=True)
        if not keep or key in seen:
            continue
        seen.add(key)
        arch = copy.deepcopy(spec.base)
        for prm in spec.parameters:
            set_path(arch, prm.path, params[prm.name])
        label = ", ".join(f"{k}={v}" for k, v in params.items())
        parse_arch(arch, f"{spec.source} point ({label})")
        points.append(Point(index=len(points), params=params, arch=arch))
    if not points:
        raise SweepError(f"{spec.source}: no design point satisfies the constraints.")
    return points


def point_hash(arch: dict, workload_hash: str) -> str:
    """sha256 over the canonical arch JSON, the workload content hash and the tool version."""
    canon = json.dumps(arch, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{canon}|{workload_hash}|{__version__}".encode()).hexdigest()[:24]
