"""Fixtures for the control tests: an in-memory SupervisorView and a short socket directory."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_view import FakeView


@pytest.fixture
def view() -> FakeView:
    return FakeView()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory: unix socket paths are limited to ~107 bytes, pytest's tmp_path is long."""
    path = Path(tempfile.mkdtemp(prefix="vo-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
