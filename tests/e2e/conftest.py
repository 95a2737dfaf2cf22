"""Lab end-to-end tests: the lab helpers (lab/labkit.py) on the path; the test that takes the lab down runs last,
whatever file it is in."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab"))


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_teardown: takes the lab down; runs after every other lab test")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("lab_teardown") is not None)
