"""accelsim: replay real activation-sparsity traces on configurable hardware."""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "capture"]


def __getattr__(name: str) -> Any:
    """`accelsim.capture` imports torch only when first used."""
    if name == "capture":
        from accelsim.workload.capture import capture

        return capture
    raise AttributeError(f"module 'accelsim' has no attribute {name!r}")
