"""The resources every run gets, derived from the settings (INTELLIGENCE_HOME)."""

from __future__ import annotations

from typing import Any

from intelligence.settings import Settings, settings
from resources.lake import LakeIOManager
from resources.landing_zone import LandingZone
from resources.reports import ReportStore
from resources.warehouse import Warehouse


def build_resources(config: Settings | None = None) -> dict[str, Any]:
    config = config or settings()
    warehouse = str(config.warehouse)
    return {
        "io_manager": LakeIOManager(base_path=str(config.lake), warehouse_path=warehouse),
        "quarantine_io_manager": LakeIOManager(base_path=str(config.quarantine), warehouse_path=warehouse),
        "landing": LandingZone(root=str(config.landing)),
        "warehouse": Warehouse(path=warehouse),
        "reports": ReportStore(root=str(config.reports)),
    }
