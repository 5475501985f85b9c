"""Everything collected under tests/e2e/ is marked ``e2e``: ``make test-fast`` deselects
it with ``-m "not e2e and not slow"``; ``make test`` (CI) runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

E2E_DIR = Path(__file__).resolve().parent


# tryfirst: the mark must be on the items before ``-m`` deselects by it
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:  # the hook sees the whole session's items, not only this directory's
        if item.path.resolve().is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)
