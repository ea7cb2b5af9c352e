"""docs/benchmarks.md belongs to several benchmarks: each replaces only its own `## ` section."""

from __future__ import annotations

import re
from pathlib import Path


def write_section(doc: Path, heading: str, text: str) -> None:
    """Replace the section that starts with `heading` (up to the next `## ` heading) by `text`, or append it."""
    current = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: text.rstrip("\n") + "\n\n", current, count=1).rstrip("\n") + "\n"
    else:
        updated = current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(updated, encoding="utf-8")
