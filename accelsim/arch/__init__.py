"""Architecture descriptions: YAML schema, tech tables and the cost step."""

from accelsim.arch.loader import load_arch, parse_arch
from accelsim.arch.schema import ArchBase, MemoryLevel, Precision, Tech

__all__ = ["ArchBase", "MemoryLevel", "Precision", "Tech", "load_arch", "parse_arch"]
