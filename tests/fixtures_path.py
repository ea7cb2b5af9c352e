"""Where the shared interoperability fixtures live (``../shared/fixtures`` beside the repository).

They are not part of the repository (see the fixtures' README); tests that read them skip cleanly when absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


def fixtures_dir(*parts: str) -> Path:
    """The fixture folder (or file) under ../shared/fixtures; skips the calling test when it is missing."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared fixtures not found at {path} (a fresh clone has no ../shared)")
    return path


def fixture_files(*parts: str, pattern: str = "*.xml") -> list[Path]:
    """Fixture files matching ``pattern`` under a folder, sorted; [] when the folder is missing (for parametrize)."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        return []
    return sorted(path.rglob(pattern))
