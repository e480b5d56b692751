"""Architecture descriptions: the YAML schema base, tech tables, and the cost step (energy,
area). Knows no engine: each kind's `Config` lives with its engine, and `accelsim.kinds`
joins them into the one schema that `load_arch` validates against."""

from accelsim.arch.loader import read_arch_yaml
from accelsim.arch.schema import ArchBase, MemoryLevel, Precision, Tech
from accelsim.arch.validation import validate

__all__ = ["ArchBase", "MemoryLevel", "Precision", "Tech", "read_arch_yaml", "validate"]
