"""Shared fixtures: a temp INTELLIGENCE_HOME with real folders, and a real temp Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from intelligence.settings import Settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh INTELLIGENCE_HOME under tmp_path, also exported so code reading settings() sees it."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("INTELLIGENCE_HOME", str(root))
    return Settings.from_env()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real, persistent Dagster instance (SQLite) in a temp DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst
