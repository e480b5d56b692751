"""accelsim: replay real activation-sparsity traces on configurable hardware."""

__version__ = "0.1.0"
