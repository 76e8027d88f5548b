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
from intelligence.resources import build_resources
from intelligence.schedules import monthly_attribution_schedule

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

defs = dg.Definitions(
    assets=[*marketing_sources, *marketing_attribution],
    schedules=[monthly_attribution_schedule],
    resources=build_resources(),
)
