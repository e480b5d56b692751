"""The Python API, as `import accelsim` exposes it: `accelsim.load_arch`, `accelsim.load_workload`,
`accelsim.simulate(arch, workload)` and `accelsim.compare(archs, workloads, baseline=None)`.

Architectures are given as a YAML path, a mapping with the same keys, or an arch already
loaded; workloads as a `.npz` trace path or a loaded `Workload`. A file of the wrong kind (a
trace where an architecture is expected, a sweep spec, ...) is refused by its content with one
paragraph saying what it is and what takes it (`accelsim.inputs`).

The argument order follows the command line (`accelsim run ARCH WORKLOAD`); the engine-side
`accelsim.simulate.simulate(workload, arch)` keeps its own order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from accelsim.errors import AccelsimError
from accelsim.inputs import check, check_swapped

if TYPE_CHECKING:
    from accelsim.arch.schema import ArchBase
    from accelsim.compare import Comparison
    from accelsim.results import RunResult
    from accelsim.simulate import Phase
    from accelsim.workload.layer import Layer, Workload

ArchLike = Union["ArchBase", Mapping[str, Any], str, "os.PathLike[str]"]
"""An architecture: a YAML file's path, a mapping of its keys, or an `ArchBase` already loaded."""
WorkloadLike = Union["Workload", str, "os.PathLike[str]"]
"""A workload: a `.npz` trace's path or a `Workload` already loaded."""


def load_arch(arch: ArchLike) -> ArchBase:
    """The architecture `arch` (path, mapping or loaded arch), validated against its kind's
    schema; errors name the file, the key path and what is allowed."""
    from accelsim.arch.schema import ArchBase
    from accelsim.kinds import load_arch as load_file
    from accelsim.kinds import parse_arch

    if isinstance(arch, ArchBase):
        return arch
    if isinstance(arch, Mapping):
        return parse_arch(dict(arch), "<architecture mapping>")
    if isinstance(arch, (str, os.PathLike)):
        check(arch, "arch", "an architecture argument")
        return load_file(arch)
    raise AccelsimError(f"expected an architecture (a YAML file's path, a mapping of its keys or "
                        f"a loaded arch), got a {type(arch).__name__}. Example: "
                        "accelsim.load_arch('arch_configs/scnn_like.yaml').")


def load_workload(workload: WorkloadLike) -> Workload:
    """The workload `workload` (trace path or loaded `Workload`), validated on load; errors
    name the file, the layer and the fix."""
    from accelsim.workload import load_workload as load_file
    from accelsim.workload.layer import Workload

    if isinstance(workload, Workload):
        return workload
    if isinstance(workload, (str, os.PathLike)):
        check(workload, "trace", "a workload argument")
        return load_file(workload)
    raise AccelsimError(f"expected a workload (a .npz trace's path or a loaded Workload), got a "
                        f"{type(workload).__name__}. Example: "
                        "accelsim.load_workload('workloads/digits_cnn.npz').")


def simulate(
    arch: ArchLike,
    workload: WorkloadLike,
    *,
    phase: Phase = "prefill",
    batch: int | None = None,
    context: int | None = None,
    on_layer: Callable[[Layer], None] | None = None,
) -> RunResult:
    """Run `workload` on `arch` and on its own dense equivalent: a `RunResult` whose `layers`
    DataFrame has one row per layer (seconds, pJ, bytes, cycles; units in the column names;
    `arch` and `workload` columns name the run) and whose `totals()` sums them.

    `phase="decode"` replays a causal LM's prefill trace as decode steps of `batch` tokens
    against a KV cache of `context` positions. `on_layer(layer)` is called after each layer.
    """
    from accelsim.simulate import simulate as run

    check_swapped(arch, workload, f"accelsim.simulate({str(workload)!r}, {str(arch)!r})")
    loaded_arch = load_arch(arch)
    return run(load_workload(workload), loaded_arch, on_layer=on_layer, phase=phase,
               batch=batch, context=context)


def _many(items: Any, single: tuple[type, ...]) -> list:
    """`items` as a list: one path, mapping or loaded object counts as a list of one."""
    if isinstance(items, (str, os.PathLike, Mapping, *single)):
        return [items]
    return list(items)


def compare(
    archs: ArchLike | Sequence[ArchLike],
    workloads: WorkloadLike | Sequence[WorkloadLike],
    baseline: ArchLike | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
    curves: bool = True,
    phase: Phase = "prefill",
    batch: int | None = None,
    context: int | None = None,
    on_layer: Callable[[str, Layer], None] | None = None,
) -> Comparison:
    """Every architecture on every workload, each against its own dense equivalent (and against
    `baseline`, another design, when given): a `Comparison` with `runs`, `summary()` (one row
    per workload and arch) and `layers` (every run's rows stacked).

    Everything is loaded and checked before the first simulation. With `out`, the results are
    saved there for `accelsim report`; `out` must be empty or missing, or a folder an earlier
    comparison wrote with `force=True` (which clears it). `curves` adds, for architectures whose
    speed follows the zeros, the whole-workload speed-up at uniform densities
    (`accelsim.compare.density_curve`). `on_layer(arch name, layer)` is called after each layer.
    """
    from accelsim.arch.schema import ArchBase
    from accelsim.compare import run_comparison
    from accelsim.workload.layer import Workload

    loaded_archs = [load_arch(a) for a in _many(archs, (ArchBase,))]
    base = None if baseline is None else load_arch(baseline)
    paths = _many(workloads, (Workload,))
    loaded = [(load_workload(w), str(w) if not isinstance(w, Workload) else f"<{w.model}>")
              for w in paths]
    if not loaded_archs or not loaded:
        raise AccelsimError("accelsim.compare needs at least one architecture and one workload, "
                            "e.g. accelsim.compare(['arch_configs/scnn_like.yaml'], "
                            "['workloads/digits_cnn.npz']).")
    return run_comparison(loaded_archs, loaded, out, baseline=base, force=force,
                          on_layer=on_layer, curves=curves, phase=phase, batch=batch,
                          context=context)
