"""The resources every run gets, derived from the settings (INTELLIGENCE_HOME)."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from intelligence.settings import Settings, settings
from resources.alerts import AlertSink
from resources.lake import LakeIOManager
from resources.landing_zone import LandingZone
from resources.reports import ReportStore
from resources.warehouse import Warehouse

WEBHOOK_ENV = "INTELLIGENCE_ALERT_WEBHOOK"


def build_resources(config: Settings | None = None) -> dict[str, Any]:
    config = config or settings()
    warehouse = str(config.warehouse)
    return {
        "io_manager": LakeIOManager(base_path=str(config.lake), warehouse_path=warehouse),
        "quarantine_io_manager": LakeIOManager(base_path=str(config.quarantine), warehouse_path=warehouse),
        "landing": LandingZone(root=str(config.landing)),
        "warehouse": Warehouse(path=warehouse),
        "reports": ReportStore(root=str(config.reports)),
        "alerts": AlertSink(
            warehouse_path=warehouse,
            jsonl_path=str(config.home / "alerts" / "alerts.jsonl"),
            # The URL is a secret: referenced through the environment, never written into config.
            webhook_url=dg.EnvVar(WEBHOOK_ENV) if WEBHOOK_ENV in os.environ else None,
        ),
    }
