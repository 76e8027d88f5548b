"""The conductor: every asset, check, sensor, schedule and resource of the code location."""

import dagster as dg

from assets.marketing import ads, crm, email, social, web
from intelligence.resources import build_resources

SOURCE_MODULES = (ads, social, crm, web, email)

marketing_sources = [asset for module in SOURCE_MODULES for asset in module.assets]

defs = dg.Definitions(
    assets=[*marketing_sources],
    resources=build_resources(),
)
