"""The English sentences the language-model recipes encode (shipped in `data/sentences.txt`)."""

from __future__ import annotations

from pathlib import Path

SENTENCES_FILE = Path(__file__).parent / "data" / "sentences.txt"


def recipe_sentences() -> list[str]:
    """The shipped English sentences (public-domain openings; sources in the file's header)."""
    lines = SENTENCES_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
