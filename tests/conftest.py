"""Shared fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the ``slow`` tests first (a stable sort: otherwise in collection order). Under
    `make test`'s two xdist workers the longest ones then start at once, one per worker, instead
    of one of them starting last behind the rest of the suite."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
