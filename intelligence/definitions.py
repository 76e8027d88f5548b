"""The conductor: every asset, check, sensor, schedule and resource of the code location."""

import dagster as dg

from assets.marketing import (
    ads,
    attribution,
    crm,
    email,
    identity,
    journeys,
    path_attribution,
    report,
    social,
    touchpoints,
    web,
)
from assets.platform import module_health
from assets.telemetry import (
    anomaly_events,
    anomaly_scores,
    detection_quality,
    diagnostics,
    health_events,
    incidents,
    points,
    tickets,
)
from intelligence.resources import build_resources
from intelligence.schedules import monthly_attribution_schedule
from intelligence.sensors import REJECTED_KEY, ROUTING_KEY, SENSORS

SOURCE_MODULES = (ads, social, crm, web, email)

marketing_sources: list[dg.AssetsDefinition | dg.AssetSpec] = [a for module in SOURCE_MODULES for a in module.assets]
marketing_attribution: list[dg.AssetsDefinition | dg.AssetSpec] = [
    identity.identity,
    touchpoints.touchpoints,
    journeys.journeys,
    attribution.attribution,
    report.attribution_report,
    path_attribution.landing_paths,
    path_attribution.path_attribution,
]

telemetry: list[dg.AssetsDefinition | dg.AssetSpec] = [
    points.landing_telemetry,
    points.points,
    anomaly_scores.anomaly_scores,
    health_events.health_events,
    anomaly_events.anomaly_events,
    incidents.incidents,
    diagnostics.diagnostics,
    tickets.tickets,
    detection_quality.detection_quality,
]

platform_specs: list[dg.AssetSpec] = [
    dg.AssetSpec(
        ROUTING_KEY,
        description="The cleansing route of each source and every switch with its reason (DuckDB source_routing).",
        group_name="marketing",
        kinds={"duckdb"},
        owners=["team:analytics"],
    ),
    dg.AssetSpec(
        REJECTED_KEY,
        description="Landings the landing sensor refused (bad names, bad places, unreadable files), with reasons.",
        group_name="marketing",
        kinds={"file"},
        owners=["team:analytics"],
    ),
]

defs = dg.Definitions(
    assets=[*marketing_sources, *marketing_attribution, *telemetry, *platform_specs, module_health.module_health],
    schedules=[monthly_attribution_schedule],
    sensors=SENSORS,
    resources=build_resources(),
)
