"""Recorded tool outputs (tests/fixtures): importable by tests under pytest and under ansible-test units."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def fixture_body(relpath):
    """The tool's output in a fixture file: everything below the `# ---` header line."""
    text = (FIXTURES / relpath).read_text()
    marker = "\n# ---\n"
    if marker not in text:
        raise AssertionError("fixture %s has no '# ---' header separator" % relpath)
    return text.split(marker, 1)[1]


def fixture_files(subdir):
    return sorted(p.relative_to(FIXTURES).as_posix() for p in (FIXTURES / subdir).glob("*.txt"))
