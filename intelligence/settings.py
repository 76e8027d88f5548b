"""Every location and date the platform uses derives from two settings.

`INTELLIGENCE_HOME` (default `./data`) holds landing, lake, quarantine, warehouse and reports.
`INTELLIGENCE_START_DATE` (default 2024-01-01) is the first daily partition, so older history
can be backfilled by setting it earlier.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "data"
DEFAULT_START_DATE = "2024-01-01"


@dataclass(frozen=True)
class Settings:
    home: Path
    start_date: dt.date

    @classmethod
    def from_env(cls) -> Settings:
        raw_start = os.environ.get("INTELLIGENCE_START_DATE", DEFAULT_START_DATE)
        try:
            start = dt.date.fromisoformat(raw_start)
        except ValueError as exc:
            raise ValueError(f"INTELLIGENCE_START_DATE must be an ISO date like 2024-01-01, got {raw_start!r}") from exc
        home = Path(os.environ.get("INTELLIGENCE_HOME", DEFAULT_HOME)).expanduser().resolve()
        return cls(home=home, start_date=start)

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def truth(self) -> Path:
        """Ground truth written by the synthetic generators (never read by the assets)."""
        return self.home / "truth"


def settings() -> Settings:
    """Read the settings from the environment now (not cached, so tests can change them)."""
    return Settings.from_env()
