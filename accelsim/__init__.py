"""accelsim: replay real activation-sparsity traces on configurable hardware.

The public face, loaded on first use (so `import accelsim` imports neither torch nor the
engines):

* `accelsim.simulate(arch, workload)` -> `RunResult` (`.layers` DataFrame, `.totals()`)
* `accelsim.compare(archs, workloads, baseline=None)` -> `Comparison`
* `accelsim.load_arch(path_or_mapping)`, `accelsim.load_workload(path)`
* `accelsim.capture(model, inputs)` -> `Workload` (needs torch)

`accelsim.simulate` and `accelsim.compare` are also the names of sub-modules
(`from accelsim.simulate import simulate` is the engine-side function, workload first). The
package keeps both meanings: once imported, those two sub-modules can be called, and calling
one calls the public function of `accelsim.api`, so `accelsim.simulate(...)` works whichever
was imported first and `import accelsim.simulate` still gives the module.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from typing import Any

__version__ = "0.1.0"

PUBLIC = {
    "simulate": "accelsim.api",
    "compare": "accelsim.api",
    "load_arch": "accelsim.api",
    "load_workload": "accelsim.api",
    "capture": "accelsim.workload.capture",
    "RunResult": "accelsim.results",
    "Comparison": "accelsim.compare",
}
"""Public name -> the module that defines it, imported when the name is first used."""
CALLABLE_MODULES = ("simulate", "compare")
"""Sub-modules named like a public function: calling the module calls the function."""

__all__ = ["__version__", *PUBLIC]


class _CallableModule(types.ModuleType):
    """A sub-module that, called, runs the public function of the same name in `accelsim.api`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call `accelsim.api.<name>` (see `help(accelsim.api)`)."""
        return self._public()(*args, **kwargs)

    def _public(self) -> Any:
        return getattr(importlib.import_module("accelsim.api"), self.__name__.rpartition(".")[2])

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self._public())


class _Package(types.ModuleType):
    """The `accelsim` package: makes the sub-modules in `CALLABLE_MODULES` callable as the
    import system binds them to the package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in CALLABLE_MODULES and type(value) is types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used."""
    if name in CALLABLE_MODULES:
        return importlib.import_module(f"accelsim.{name}")
    if name in PUBLIC:
        return getattr(importlib.import_module(PUBLIC[name]), name)
    raise AttributeError(f"module 'accelsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC))
