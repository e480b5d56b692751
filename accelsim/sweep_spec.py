"""Sweep files: parse, validate and expand into design points, before any simulation starts.

A sweep YAML names a base arch, parameters by dotted path into it (`array.lanes`,
`memory.1.size_bytes`) with either `values` (a list) or `range: [lo, hi]` (sampled), a
`sampling` block (`grid`, `random` or `latin-hypercube` with `samples` and `seed`),
`constraints` (expressions over parameter names; arithmetic, comparisons and and/or/not only)
and one or more `workloads`. Relative paths are relative to the sweep file.

A sweep file is untrusted input, so everything is bounded before it is expanded: at most
`MAX_PARAMETERS` parameters of at most `MAX_VALUES` values each (JSON scalars: numbers,
strings, booleans, null), at most `MAX_POINTS` design points (the grid's size is computed
before any point is made), constraints of at most `MAX_CONSTRAINT_CHARS` characters and
`MAX_CONSTRAINT_NODES` syntax nodes whose integers may not grow past `MAX_CONSTRAINT_BITS`
bits, and parameter names that cannot overwrite a result column (`RESERVED_COLUMNS`).
Designs that are equal once validated (`8` and `8.0` for an integer field) are one point: it is
simulated once and the repeats are listed in `Points.duplicates`. `spec_hash` identifies what
the sweep computes (base arch, parameters, sampling, constraints, workload names and contents);
`--resume` refuses a results folder written by a different one.
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
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from accelsim import __version__
from accelsim.arch.loader import read_yaml
from accelsim.errors import AccelsimError
from accelsim.kinds import parse_arch
from accelsim.results import BASE_COLUMNS
from accelsim.workload.format import file_hash

SAMPLING_METHODS = ("grid", "random", "latin-hypercube")
MAX_PARAMETERS = 64
"""Most swept parameters."""
MAX_VALUES = 10_000
"""Most values one parameter lists."""
MAX_POINTS = 100_000
"""Most design points of one sweep (grid size, or samples)."""
MAX_WORKLOADS = 256
"""Most workloads of one sweep."""
MAX_CONSTRAINTS = 64
"""Most constraints."""
MAX_CONSTRAINT_CHARS = 1000
"""Longest constraint, characters."""
MAX_CONSTRAINT_NODES = 200
"""Most syntax nodes of one constraint."""
MAX_CONSTRAINT_BITS = 256
"""Largest integer a constraint may compute, bits."""
MAX_STRING_CHARS = 1000
"""Longest string value of a parameter."""
MAX_SEED = 2**63 - 1
"""Largest sampling seed."""
MAX_NAME_CHARS = 128
"""Longest sweep name (it names the default results folder, `runs/<name>`)."""
RESERVED_COLUMNS = frozenset({
    *BASE_COLUMNS, "point_hash", "point", "workload", "check", "area_mm2",
    "layers_without_result", "layers_with_warnings", "tokens_per_s", "latency_s_per_token",
    "energy_pj_per_token", "weight_read_bytes_per_token",
})
"""Result columns of a sweep's rows; a parameter may not be named after one. (Columns an
engine adds are checked when the first result arrives.)"""


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
    decode: dict | None = None
    """`{"batch": B, "context": L}` (either may be None) when every point replays the
    workloads as LLM decode (`accelsim.decode`); None for the traces as captured."""
    spec_hash: str = ""
    """sha256 (first 16 hex digits) of what the sweep computes; see the module docstring."""


class Points(list):
    """The design points of a sweep (a list of `Point`), with `duplicates`: one entry per design
    that repeats an earlier point once validated (its `params` and the `same_as` point index),
    which is not simulated again."""

    def __init__(self, points: list[Point], duplicates: list[dict]) -> None:
        super().__init__(points)
        self.duplicates = duplicates


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Eq: operator.eq, ast.NotEq: operator.ne}
_UNOPS = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}


def _check_expr(node: ast.AST, names: set[str], text: str, source: str) -> None:
    """Refuse anything but numbers, parameter names and arithmetic/comparison/boolean ops, and
    expressions larger than `MAX_CONSTRAINT_NODES` nodes."""
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Name,
               ast.Constant, ast.Load, ast.And, ast.Or, *_BINOPS, *_CMPOPS, *_UNOPS)
    nodes = list(ast.walk(node))
    if len(nodes) > MAX_CONSTRAINT_NODES:
        raise SweepError(f"{source}: constraint {_quote(text)} has {len(nodes)} syntax nodes, more "
                         f"than {MAX_CONSTRAINT_NODES}; split it into several constraints.")
    for sub in nodes:
        if not isinstance(sub, allowed):
            raise SweepError(
                f"{source}: constraint {_quote(text)} uses {type(sub).__name__}; only numbers, "
                "parameter names, + - * / // % **, comparisons and and/or/not are allowed."
            )
        if isinstance(sub, ast.Constant) and (isinstance(sub.value, bool) or not isinstance(
                sub.value, (int, float))):
            raise SweepError(f"{source}: constraint {_quote(text)}: only numeric constants "
                             "allowed.")
        if isinstance(sub, ast.Constant) and isinstance(sub.value, int) \
                and sub.value.bit_length() > MAX_CONSTRAINT_BITS:
            raise SweepError(f"{source}: constraint {_quote(text)}: the constant has more than "
                             f"{MAX_CONSTRAINT_BITS} bits.")
        if isinstance(sub, ast.Name) and sub.id not in names:
            raise SweepError(f"{source}: constraint {_quote(text)} names '{sub.id}', which is not "
                             f"a parameter; parameters: {', '.join(sorted(names))}.")


def _quote(text: str) -> str:
    """A constraint's text for a message, cut to a readable length."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


class ConstraintError(Exception):
    """A constraint cannot be evaluated on a point (the message says why)."""


def _number(value: Any) -> Any:
    if isinstance(value, str) or value is None:
        raise ConstraintError(f"arithmetic on the non-number {value!r}")
    if isinstance(value, int) and value.bit_length() > MAX_CONSTRAINT_BITS:
        raise ConstraintError(f"an integer above 2**{MAX_CONSTRAINT_BITS}")
    return value


def _power(base: Any, exponent: Any) -> Any:
    if (isinstance(base, int) and isinstance(exponent, int) and exponent > 0
            and abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_CONSTRAINT_BITS):
        raise ConstraintError(f"{base} ** {exponent} is above 2**{MAX_CONSTRAINT_BITS}")
    return base ** exponent


def evaluate(node: ast.AST, env: dict) -> Any:
    """Evaluate a checked constraint tree over parameter values `env`; raises
    `ConstraintError` (or ZeroDivisionError, TypeError, OverflowError) where it cannot."""
    if isinstance(node, ast.Expression):
        return evaluate(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _number(evaluate(node.left, env)), _number(evaluate(node.right, env))
        if isinstance(node.op, ast.Pow):
            return _number(_power(left, right))
        if isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_CONSTRAINT_BITS + 1:
            raise ConstraintError(f"an integer above 2**{MAX_CONSTRAINT_BITS}")
        return _number(_BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        operand = evaluate(node.operand, env)
        return _UNOPS[type(node.op)](operand if isinstance(node.op, ast.Not)
                                     else _number(operand))
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


def _scalar(value: Any) -> bool:
    """A value a parameter may take: a finite number, a short string, a boolean or null."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int):
        return value.bit_length() <= 63 or isinstance(value, bool)
    if isinstance(value, str):
        return len(value) <= MAX_STRING_CHARS
    return value is None


def _parameter(raw: Any, source: str) -> Parameter:
    if not isinstance(raw, dict) or "path" not in raw:
        raise SweepError(f"{source}: each parameter needs a mapping with 'path' and 'values' or "
                         f"'range', got {_short(raw)}.")
    if not isinstance(raw["path"], str) or not raw["path"]:
        raise SweepError(f"{source}: a parameter's 'path' must be a dotted path such as "
                         f"'array.lanes', got {_short(raw['path'])}.")
    path = raw["path"]
    unknown = set(raw) - {"path", "name", "values", "range", "integer", "log"}
    if unknown:
        raise SweepError(f"{source}: parameter '{path}': unknown keys "
                         f"{sorted(map(str, unknown))}; allowed: path, name, values, range, "
                         "integer, log.")
    name = raw.get("name", path.replace(".", "_"))
    if not isinstance(name, str) or not name.isidentifier() or len(name) > 128:
        raise SweepError(f"{source}: parameter name {_short(name)} is not an identifier; give "
                         "'name'.")
    if name in RESERVED_COLUMNS:
        raise SweepError(f"{source}: parameter '{path}': the name '{name}' is a result column "
                         "of the sweep and would overwrite it; give another 'name' (e.g. "
                         f"'{name}_param').")
    for flag in ("integer", "log"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise SweepError(f"{source}: parameter '{path}': '{flag}' must be true or false, got "
                             f"{_short(raw[flag])}.")
    if ("values" in raw) == ("range" in raw):
        raise SweepError(f"{source}: parameter '{path}': give exactly one of 'values' or 'range'.")
    if "values" in raw:
        values = raw["values"]
        if not isinstance(values, list) or not values:
            raise SweepError(f"{source}: parameter '{path}': 'values' must be a non-empty list.")
        if len(values) > MAX_VALUES:
            raise SweepError(f"{source}: parameter '{path}': {len(values)} values, more than "
                             f"{MAX_VALUES}; use a 'range' with sampling instead.")
        for value in values:
            if not _scalar(value):
                raise SweepError(f"{source}: parameter '{path}': value {_short(value)} is not a "
                                 "finite number (below 2**63 in size), a string, true/false "
                                 "or null; write it as one (quote dates and other YAML types).")
        return Parameter(path, name, values=tuple(values))
    rng = raw["range"]
    if (not isinstance(rng, list) or len(rng) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) and abs(v) < 2**63 for v in rng)
            or not rng[0] < rng[1]):
        raise SweepError(f"{source}: parameter '{path}': 'range' must be [low, high] finite "
                         f"numbers (below 2**63 in size) with low < high, got {_short(rng)}.")
    log = raw.get("log", False)
    if log and rng[0] <= 0:
        raise SweepError(f"{source}: parameter '{path}': a log range needs low > 0.")
    integer = raw.get("integer", all(isinstance(v, int) for v in rng))
    return Parameter(path, name, low=float(rng[0]), high=float(rng[1]), integer=integer, log=log)


def _short(value: Any) -> str:
    """`repr(value)` cut to a readable length (a container by its type only)."""
    text = repr(value) if not isinstance(value, (dict, list)) else f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _read_yaml(path: str | Path, missing: str) -> Any:
    """The content of the YAML file `path` (safe loader); raises SweepError with the message
    `missing` where there is no such file, and one naming `path` where it is not valid YAML."""
    if not Path(path).is_file():
        raise SweepError(missing)
    return read_yaml(path, SweepError, "YAML")


def load_sweep(path: str | Path, decode: dict | None = None) -> SweepSpec:
    """Read and validate a sweep file; every generated arch is validated by `expand`.
    `decode` (`{"batch": B, "context": L}`, from `--phase decode`) replaces the file's own
    `decode:` mapping."""
    p = Path(path)
    raw = _read_yaml(path, f"{path}: no such sweep file.")
    source = str(path)
    if not isinstance(raw, dict):
        raise SweepError(f"{source}: the top level must be a mapping.")
    unknown = set(raw) - {"name", "base", "parameters", "sampling", "constraints", "workloads",
                          "decode"}
    if unknown:
        raise SweepError(f"{source}: unknown keys {sorted(map(str, unknown))}; allowed: name, "
                         "base, parameters, sampling, constraints, workloads, decode.")
    decode = _decode(raw.get("decode") if decode is None else decode, source)
    for key in ("base", "parameters", "workloads"):
        if not raw.get(key):
            raise SweepError(f"{source}: missing or empty '{key}'.")
    name = raw.get("name", p.stem)
    if (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS
            or not name.isprintable() or name.startswith("/")
            or ".." in PurePosixPath(name).parts):
        raise SweepError(f"{source}: 'name' must be printable text of at most {MAX_NAME_CHARS} "
                         "characters, not an absolute path and without '..' (it names the "
                         f"results folder, runs/<name>), got {_short(name)}.")
    if not isinstance(raw["base"], str):
        raise SweepError(f"{source}: 'base' must be the path of an architecture YAML file, got "
                         f"{_short(raw['base'])}.")
    base_path = p.parent / raw["base"]
    base_raw = _read_yaml(base_path, f"{source}: base arch {base_path} does not exist.")
    base = parse_arch(base_raw, str(base_path)).model_dump(mode="json")
    if not isinstance(raw["parameters"], list):
        raise SweepError(f"{source}: 'parameters' must be a list of mappings.")
    if len(raw["parameters"]) > MAX_PARAMETERS:
        raise SweepError(f"{source}: {len(raw['parameters'])} parameters, more than "
                         f"{MAX_PARAMETERS}.")
    params = tuple(_parameter(r, source) for r in raw["parameters"])
    for prm in params:
        _lookup(base, prm.path, source)
    names = [prm.name for prm in params]
    if len(set(names)) != len(names):
        raise SweepError(f"{source}: parameter names repeat: {names}.")
    paths = [prm.path for prm in params]
    if len(set(paths)) != len(paths):
        raise SweepError(f"{source}: parameter paths repeat: {paths}; sweep each field once.")
    sampling = raw.get("sampling") or {}
    if not isinstance(sampling, dict):
        raise SweepError(f"{source}: 'sampling' must be a mapping such as {{method: "
                         f"latin-hypercube, samples: 100, seed: 0}}, got {_short(sampling)}.")
    unknown = set(sampling) - {"method", "samples", "seed"}
    if unknown:
        raise SweepError(f"{source}: unknown keys {sorted(map(str, unknown))} in 'sampling'; "
                         "allowed: method, samples, seed.")
    method = sampling.get("method", "grid")
    if method not in SAMPLING_METHODS:
        raise SweepError(f"{source}: sampling.method {_short(method)}; allowed: "
                         f"{SAMPLING_METHODS}.")
    samples = sampling.get("samples", 0)
    if method != "grid" and (isinstance(samples, bool) or not isinstance(samples, int)
                             or not 0 < samples <= MAX_POINTS):
        raise SweepError(f"{source}: sampling '{method}' needs a positive integer 'samples' of "
                         f"at most {MAX_POINTS}, got {_short(samples)}.")
    seed = sampling.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SweepError(f"{source}: sampling.seed must be an integer from 0 to 2**63 - 1, got "
                         f"{_short(seed)}.")
    if method == "grid" and any(prm.values is None for prm in params):
        raise SweepError(f"{source}: grid sampling needs 'values' lists; parameters with a "
                         "'range' need sampling.method random or latin-hypercube.")
    if method == "grid":
        size = math.prod(len(prm.values or ()) for prm in params)
        if size > MAX_POINTS:
            raise SweepError(f"{source}: the grid has {size:,} design points, more than "
                             f"{MAX_POINTS:,}; list fewer values, or sample the space "
                             "(sampling.method latin-hypercube with 'samples').")
    constraints = raw.get("constraints") or []
    if not isinstance(constraints, list) or len(constraints) > MAX_CONSTRAINTS:
        raise SweepError(f"{source}: 'constraints' must be a list of at most {MAX_CONSTRAINTS} "
                         "expressions.")
    for text in constraints:
        if not isinstance(text, (str, int, float)) or isinstance(text, bool) \
                or len(str(text)) > MAX_CONSTRAINT_CHARS:
            raise SweepError(f"{source}: each constraint must be an expression of at most "
                             f"{MAX_CONSTRAINT_CHARS} characters, got {_short(text)}.")
        _compile(str(text), set(names), source)
    workloads = raw["workloads"] if isinstance(raw["workloads"], list) else [raw["workloads"]]
    if len(workloads) > MAX_WORKLOADS or not all(isinstance(w, str) for w in workloads):
        raise SweepError(f"{source}: 'workloads' must be a list of at most {MAX_WORKLOADS} trace "
                         "paths.")
    files = tuple(p.parent / w for w in workloads)
    missing = [str(w) for w in files if not w.is_file()]
    if missing:
        raise SweepError(f"{source}: workload files not found: {', '.join(missing)}.")
    stems = [w.stem for w in files]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise SweepError(f"{source}: workloads {repeated} appear more than once by name; results "
                         "are keyed by the file name without '.npz', so give each workload its "
                         "own name (copy or rename the file).")
    constraint_texts = tuple(map(str, constraints))
    content = {
        "base": base,
        "parameters": [{k: v for k, v in vars(prm).items() if v is not None} for prm in params],
        "sampling": {"method": method, "samples": int(samples or 0), "seed": seed},
        "constraints": list(constraint_texts),
        "workloads": [[w.stem, file_hash(str(w))] for w in files],
        **({"decode": decode} if decode is not None else {}),
    }
    spec_hash = hashlib.sha256(json.dumps(content, sort_keys=True, default=list).encode())
    return SweepSpec(source=source, name=name, base=base, parameters=params, method=method,
                     samples=int(samples or 0), seed=seed, constraints=constraint_texts,
                     workloads=files, decode=decode, spec_hash=spec_hash.hexdigest()[:16])


def _decode(raw: object, source: str) -> dict | None:
    """The `decode:` mapping checked: None, or batch and context as positive integers/None."""
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, dict) or set(raw) - {"batch", "context"}:
        raise SweepError(f"{source}: 'decode' must be a mapping with optional 'batch' and "
                         f"'context' (tokens per step, KV-cache positions), got {_short(raw)}.")
    for key in ("batch", "context"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 < value <= 2**31):
            raise SweepError(f"{source}: decode.{key} must be a positive integer, got "
                             f"{_short(value)}.")
    return {"batch": raw.get("batch"), "context": raw.get("context")}


def _compile(text: str, names: set[str], source: str) -> ast.Expression:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise SweepError(f"{source}: constraint {_quote(text)} is not a valid expression "
                         f"({exc.msg}).") from None
    except (RecursionError, MemoryError, ValueError):
        raise SweepError(f"{source}: constraint {_quote(text)} is nested too deeply to read; "
                         "simplify it.") from None
    _check_expr(tree, names, text, source)
    return tree


def _unit_samples(spec: SweepSpec) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    n, d = spec.samples, len(spec.parameters)
    if spec.method == "random":
        return rng.random((n, d))
    strata = np.stack([rng.permutation(n) for _ in range(d)], axis=1)
    return (strata + rng.random((n, d))) / n


def expand(spec: SweepSpec) -> Points:
    """All design points that pass the constraints, each arch validated. A design equal to an
    earlier one once validated is not a point of its own: it is listed in `duplicates`."""
    if spec.method == "grid":
        combos = itertools.product(*(prm.values for prm in spec.parameters))
    else:
        combos = ([prm.from_unit(u) for prm, u in zip(spec.parameters, row, strict=True)]
                  for row in _unit_samples(spec))
    names = {prm.name for prm in spec.parameters}
    trees = [_compile(text, names, spec.source) for text in spec.constraints]
    points: list[Point] = []
    duplicates: list[dict] = []
    seen: dict[str, int] = {}
    for combo in combos:
        params = {prm.name: value for prm, value in zip(spec.parameters, combo, strict=True)}
        try:
            keep = all(evaluate(tree, params) for tree in trees)
        except (ConstraintError, ZeroDivisionError, TypeError, OverflowError, ValueError) as exc:
            raise SweepError(f"{spec.source}: a constraint fails on {params} ({exc}); bound the "
                             "constraint or the parameter values.") from None
        if not keep:
            continue
        arch = copy.deepcopy(spec.base)
        for prm in spec.parameters:
            set_path(arch, prm.path, params[prm.name])
        label = ", ".join(f"{k}={v}" for k, v in params.items())
        canonical = parse_arch(arch, f"{spec.source} point ({label})").model_dump(mode="json")
        design = json.dumps(canonical, sort_keys=True)
        if design in seen:
            duplicates.append({"params": params, "same_as": seen[design]})
            continue
        seen[design] = len(points)
        if not any(prm.path == "name" for prm in spec.parameters):
            canonical["name"] = f"{canonical['name']} ({label})"
        points.append(Point(index=len(points), params=params, arch=canonical))
    if not points:
        raise SweepError(f"{spec.source}: no design point satisfies the constraints.")
    return Points(points, duplicates)


def point_hash(arch: dict, workload_hash: str, decode: dict | None = None) -> str:
    """sha256 over the canonical arch JSON, the workload content hash and the tool version (and
    the decode setup when the sweep replays decode)."""
    canon = json.dumps(arch, sort_keys=True, separators=(",", ":"))
    phase = "" if decode is None else "|decode" + json.dumps(decode, sort_keys=True)
    return hashlib.sha256(f"{canon}|{workload_hash}{phase}|{__version__}".encode()).hexdigest()[:24]
