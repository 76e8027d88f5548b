"""Touchpoints: one unified daily table of marketing touches and conversions, one row per real event.

Touches are ad clicks, social engagements and clicks, e-mail opens and clicks, and web sessions;
conversions are CRM orders (value in USD). Impressions and e-mail sends are exposure, not touches.

Two sources often report the same event: an ad click and the web session it opens (same click id),
a social or e-mail click and the session it opens (same person, matching utm medium, within
`MATCH_TOLERANCE`). Such a session is merged into the click, whose `source` then lists both
(`ads+web`). A session opened just after midnight by a click of the previous day is merged into
that day's touch (already written), and counted in the metadata as merged across days.

`person_id` comes from the identity module of the touch's month.
"""

import datetime as dt

import dagster as dg
import dataframely as dy
import polars as pl

from assets.marketing import ads, crm, email, social, web
from assets.marketing import identity as identity_module
from intelligence import policy
from intelligence.cleansing import PARTITION_DATE
from intelligence.contracts import Contract
from intelligence.frames import conform
from intelligence.modules import module
from intelligence.partitions import DAILY, lookback
from intelligence.reference import FX_TO_USD
from intelligence.routing import STANDARD, STRICT, load_routes, select_routed, strict_days
from resources.warehouse import Warehouse

SOURCE_MODULES = {"ads": ads, "social": social, "web": web, "email": email, "crm": crm}
MATCH_TOLERANCE = dt.timedelta(minutes=30)
CAMPAIGN_TOLERANCE = dt.timedelta(minutes=2)
PARTITION = "landing_date"
CHANNELS = ["paid_search", "display", "video", "social", "email", "organic_search", "referral", "direct", "other"]
UTM_MEDIUM_CHANNEL = {
    "cpc": "paid_search",
    "ppc": "paid_search",
    "paidsearch": "paid_search",
    "paid_search": "paid_search",
    "sem": "paid_search",
    "display": "display",
    "banner": "display",
    "cpm": "display",
    "video": "video",
    "social": "social",
    "paid_social": "social",
    "social-paid": "social",
    "email": "email",
    "newsletter": "email",
    "organic": "organic_search",
    "referral": "referral",
}


class Touchpoint(dy.Schema):
    event_key = dy.String(primary_key=True, description="source:record id of the event's first report.")
    person_id = dy.String(nullable=False)
    ts = dy.Datetime(nullable=False, time_zone="UTC")
    channel = dy.Enum(CHANNELS, nullable=True, description="Null for conversions.")
    source = dy.String(nullable=False, description="Every source that reported the event, e.g. ads+web.")
    campaign = dy.String(nullable=True)
    cost = dy.Float64(nullable=False, min=0)
    is_conversion = dy.Bool(nullable=False)
    conversion_value = dy.Float64(nullable=True, min=0, description="Order value in USD.")
    identifier = dy.String(nullable=False, description="The identifier the person was resolved from.")
    landing_date = dy.Date(nullable=False)

    @dy.rule()
    def conversion_has_value(cls) -> pl.Expr:
        return ~pl.col("is_conversion") | pl.col("conversion_value").is_not_null()

    @dy.rule()
    def touch_has_channel(cls) -> pl.Expr:
        return pl.col("is_conversion") | pl.col("channel").is_not_null()


CONTRACT = Contract(
    schema=Touchpoint,
    version="1.0.0",
    owner="team:analytics",
    description="One row per real marketing touch or conversion, with the person it belongs to.",
)

COLUMNS = ["event_key", "ts", "channel", "source", "campaign", "cost", "is_conversion", "conversion_value"]


def _key(kind: str, column: str) -> pl.Expr:
    return pl.when(pl.col(column).is_not_null()).then(pl.lit(kind + ":") + pl.col(column))


def _touches(
    frame: pl.LazyFrame, source: str, record: str, channel: pl.Expr, identifier: pl.Expr, cost: pl.Expr | None = None
) -> pl.LazyFrame:
    return frame.select(
        (pl.lit(source + ":") + pl.col(record)).alias("event_key"),
        pl.col("ts"),
        channel.cast(pl.String).alias("channel"),
        pl.lit(source).alias("source"),
        pl.col("campaign").cast(pl.String)
        if "campaign" in frame.collect_schema()
        else pl.col("utm_campaign").alias("campaign"),
        (cost if cost is not None else pl.lit(0.0)).alias("cost"),
        pl.lit(False).alias("is_conversion"),
        pl.lit(None, pl.Float64).alias("conversion_value"),
        identifier.alias("identifier"),
        pl.col(PARTITION),
    )


def web_channel() -> pl.Expr:
    medium = pl.col("utm_medium").str.to_lowercase()
    mapped = medium.replace_strict(UTM_MEDIUM_CHANNEL, default="other", return_dtype=pl.String)
    return pl.when(medium.is_null() & pl.col("utm_source").is_null()).then(pl.lit("direct")).otherwise(mapped)


def unify_touchpoints(
    ads: pl.LazyFrame,
    social: pl.LazyFrame,
    web: pl.LazyFrame,
    email: pl.LazyFrame,
    crm: pl.LazyFrame,
    identity: pl.LazyFrame,
    days: list[dt.date],
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Touches and conversions of `days` (clicks of the day before are read to merge sessions)."""
    ads, social, web, email, crm = (
        conform(frame, {**SOURCE_MODULES[name].CONTRACT.polars_schema, PARTITION_DATE: pl.Date()})
        for frame, name in ((ads, "ads"), (social, "social"), (web, "web"), (email, "email"), (crm, "crm"))
    )
    identity = conform(identity, identity_module.CONTRACT.polars_schema)
    wanted = pl.col(PARTITION).is_in(days)
    ad_touches = _touches(ads, "ads", "click_id", pl.col("channel"), _key("cookie", "cookie_id"), pl.col("cost"))
    social_touches = _touches(
        social.filter(pl.col("event_type").cast(pl.String).is_in(["engagement", "click"])),
        "social",
        "event_id",
        pl.lit("social"),
        pl.coalesce(_key("cookie", "cookie_id"), _key("handle", "social_handle")),
    ).with_columns(pl.col("event_key"))
    email_touches = _touches(
        email.filter(pl.col("event_type").cast(pl.String).is_in(["open", "click"])).with_columns(
            (pl.col("message_id") + ":" + pl.col("event_type").cast(pl.String)).alias("record")
        ),
        "email",
        "record",
        pl.lit("email"),
        _key("email", "email_hash"),
    )
    web_all = web.filter(wanted).with_columns(web_channel().alias("_channel"))
    orders = crm.filter(wanted & (pl.col("record_type").cast(pl.String) == "order")).select(
        (pl.lit("crm:") + pl.col("order_id")).alias("event_key"),
        pl.col("ts"),
        pl.lit(None, pl.String).alias("channel"),
        pl.lit("crm").alias("source"),
        pl.lit(None, pl.String).alias("campaign"),
        pl.lit(0.0).alias("cost"),
        pl.lit(True).alias("is_conversion"),
        (pl.col("amount") * pl.col("currency").cast(pl.String).replace_strict(FX_TO_USD, return_dtype=pl.Float64))
        .round(2)
        .alias("conversion_value"),
        _key("customer", "customer_id").alias("identifier"),
        pl.col(PARTITION),
    )
    identity_map = identity.select("identifier", "person_id", "month")

    def with_person(frame: pl.LazyFrame) -> pl.LazyFrame:
        return (
            frame.with_columns(pl.col(PARTITION).dt.truncate("1mo").alias("month"))
            .join(identity_map, on=["identifier", "month"], how="left")
            .with_columns(pl.coalesce("person_id", "identifier").alias("person_id"))
            .drop("month")
        )

    # 1. Sessions opened by an ad click carry its click id.
    clicks = ads.select("click_id", pl.col(PARTITION).alias("_click_day"))
    web_sessions = web_all.join(clicks, on="click_id", how="left")
    by_click = web_sessions.filter(pl.col("_click_day").is_not_null())
    sessions = web_sessions.filter(pl.col("_click_day").is_null()).drop("_click_day")
    same_day_clicks = by_click.filter(pl.col("_click_day") == pl.col(PARTITION)).select("click_id").unique()

    # 2. Sessions opened by a social or e-mail click: same person, same medium, shortly after.
    session_touches = with_person(
        _touches(
            sessions.with_columns(
                pl.coalesce(_key("customer", "customer_id"), _key("cookie", "cookie_id")).alias("_identifier")
            ),
            "web",
            "session_id",
            pl.col("_channel"),
            pl.col("_identifier"),
        )
    ).collect()
    clicks_for_sessions = with_person(
        pl.concat(
            [
                social_touches.join(
                    social.filter(pl.col("event_type").cast(pl.String) == "click").select(
                        (pl.lit("social:") + pl.col("event_id")).alias("event_key")
                    ),
                    on="event_key",
                ),
                email_touches.filter(pl.col("event_key").str.ends_with(":click")),
            ]
        )
    ).collect()
    session_touches, merged_keys, merged_earlier = _merge_sessions_into_clicks(
        session_touches, clicks_for_sessions, days
    )

    ad_frame = (
        with_person(ad_touches)
        .collect()
        .with_columns(
            pl.when(pl.col("event_key").str.strip_prefix("ads:").is_in(same_day_clicks.collect()["click_id"].implode()))
            .then(pl.lit("ads+web"))
            .otherwise(pl.col("source"))
            .alias("source")
        )
    )
    other = pl.concat([with_person(social_touches), with_person(email_touches), with_person(orders)]).collect()
    other = other.with_columns(
        pl.when(pl.col("event_key").is_in(pl.Series(merged_keys).implode()))
        .then(pl.col("source") + "+web")
        .otherwise(pl.col("source"))
    )
    result = (
        pl.concat([ad_frame, other, session_touches], how="vertical_relaxed")
        .filter(pl.col(PARTITION).is_in(days))
        .sort(PARTITION, "ts", "event_key")
    )
    stats = {
        "sessions_merged_into_ad_clicks": by_click.filter(pl.col(PARTITION).is_in(days))
        .select(pl.len())
        .collect()
        .item(),
        "sessions_merged_into_social_or_email_clicks": len(merged_keys),
        "sessions_merged_across_days": merged_earlier,
    }
    return result, stats


def _match(sessions: pl.DataFrame, clicks: pl.DataFrame, by: list[str], tolerance: dt.timedelta) -> pl.DataFrame:
    """Each session → the latest click before it with the same `by` values within `tolerance`."""
    return (
        sessions.sort("ts")
        .join_asof(
            clicks.sort("click_ts"),
            left_on="ts",
            right_on="click_ts",
            by=by,
            strategy="backward",
            tolerance=tolerance,
            check_sortedness=False,
        )
        .filter(pl.col("click_key").is_not_null())
        .sort("ts")
        .unique(subset="click_key", keep="first", maintain_order=True)  # one session per click
    )


def _merge_sessions_into_clicks(
    sessions: pl.DataFrame, clicks: pl.DataFrame, days: list[dt.date]
) -> tuple[pl.DataFrame, list[str], int]:
    """Drop sessions that a social/e-mail click opened; return the keys of clicks merged with a session.

    First pass: same person and medium within MATCH_TOLERANCE. Second pass, for sessions whose
    cookie is not linked to the clicker yet: same medium and campaign within CAMPAIGN_TOLERANCE.
    """
    if sessions.height == 0 or clicks.height == 0:
        return sessions, [], 0
    candidates = sessions.filter(pl.col("channel").is_in(["social", "email"])).select(
        "event_key", "person_id", "channel", "campaign", "ts", pl.col(PARTITION).alias("_session_day")
    )
    click_side = clicks.select(
        pl.col("event_key").alias("click_key"),
        "person_id",
        "channel",
        "campaign",
        pl.col("ts").alias("click_ts"),
        pl.col(PARTITION).alias("_click_day"),
    )
    by_person = _match(candidates, click_side.drop("campaign"), ["person_id", "channel"], MATCH_TOLERANCE)
    rest = candidates.join(by_person.select("event_key"), on="event_key", how="anti")
    unused = click_side.join(by_person.select("click_key"), on="click_key", how="anti").drop("person_id")
    by_campaign = _match(rest.drop("person_id"), unused, ["channel", "campaign"], CAMPAIGN_TOLERANCE)
    matched = pl.concat([by_person.select(by_campaign.columns), by_campaign])
    in_range = matched.filter(pl.col("_click_day").is_in(days) & (pl.col("_click_day") == pl.col("_session_day")))
    earlier = matched.filter(pl.col("_click_day") != pl.col("_session_day"))
    remaining = sessions.join(matched.select("event_key"), on="event_key", how="anti")
    return remaining, in_range["click_key"].to_list(), earlier.height


SOURCES = ("ads", "social", "web", "email", "crm")
DAY_BEFORE_TOO = ("ads", "social", "email")  # clicks of the day before can open today's sessions


def _cleansed(source: str, route: str) -> dg.AssetIn:
    prefix = "cleansed" if route == STANDARD else "strict_cleansed"
    mapping = lookback(-1) if source in DAY_BEFORE_TOO else None
    # Missing partitions are allowed: strict ones exist only for days a source was routed through strict
    # cleansing, and a source's day may land later than the others' (a late file). The day is then built
    # from what has landed, says so (`missing_source_days`), and eager automation builds it again when the
    # late partition is materialized.
    return dg.AssetIn(
        ["marketing", f"{prefix}_{source}"], partition_mapping=mapping, metadata={"allow_missing_partitions": True}
    )


def missing_source_days(instance: dg.DagsterInstance, days: list[dt.date]) -> dict[str, list[str]]:
    """Per source, the days of the run it has no cleansed partition for yet (on neither route)."""
    missing = {}
    for source in SOURCES:
        have: set[str] = set()
        for prefix in ("cleansed", "strict_cleansed"):
            have |= instance.get_materialized_partitions(dg.AssetKey(["marketing", f"{prefix}_{source}"]))
        gone = [d.isoformat() for d in days if d.isoformat() not in have]
        if gone:
            missing[source] = gone
    return missing


def routed_inputs(
    context: dg.AssetExecutionContext, warehouse: Warehouse, frames: dict[str, pl.LazyFrame], days: list[dt.date]
) -> tuple[dict[str, pl.LazyFrame], dict[str, list[str]]]:
    """Each source's rows per day from the route that day took (strict where routed and materialized)."""
    routes = load_routes(warehouse)
    wanted = sorted({d - dt.timedelta(days=1) for d in days} | set(days))
    chosen, used = {}, {}
    for source in SOURCES:
        strict_key = dg.AssetKey(["marketing", f"strict_cleansed_{source}"])
        materialized = {dt.date.fromisoformat(k) for k in context.instance.get_materialized_partitions(strict_key)}
        on_strict = sorted(d for d in strict_days(routes, source, wanted) if d in materialized)
        chosen[source] = select_routed(frames[source], frames[f"strict_{source}"], on_strict)
        used[source] = [d.isoformat() for d in on_strict if d in days]
    return chosen, used


@module(
    key=["marketing", "touchpoints"],
    contract=CONTRACT,
    partitions_def=DAILY,
    partition_column=PARTITION,
    ins={
        **{source: _cleansed(source, STANDARD) for source in SOURCES},
        **{f"strict_{source}": _cleansed(source, STRICT) for source in SOURCES},
        "identity": dg.AssetIn(["marketing", "identity"], metadata={"allow_missing_partitions": True}),
    },
    # Identity only refines person ids (journeys look people up in it again): its monthly rebuild is no
    # reason to rebuild a month of touchpoints.
    automation_condition=policy.eager_recent_allowing_gaps(ignore=dg.AssetSelection.assets(["marketing", "identity"])),
)
def touchpoints(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    ads: pl.LazyFrame,
    social: pl.LazyFrame,
    web: pl.LazyFrame,
    email: pl.LazyFrame,
    crm: pl.LazyFrame,
    strict_ads: pl.LazyFrame,
    strict_social: pl.LazyFrame,
    strict_web: pl.LazyFrame,
    strict_email: pl.LazyFrame,
    strict_crm: pl.LazyFrame,
    identity: pl.LazyFrame,
) -> tuple[pl.DataFrame, dict[str, object]]:
    """One unified daily table of touches and conversions, deduplicated across sources, with person ids."""
    days = [dt.date.fromisoformat(k) for k in context.partition_keys]
    frames = {
        "ads": ads,
        "social": social,
        "web": web,
        "email": email,
        "crm": crm,
        "strict_ads": strict_ads,
        "strict_social": strict_social,
        "strict_web": strict_web,
        "strict_email": strict_email,
        "strict_crm": strict_crm,
    }
    source_schemas = {s: m.CONTRACT.polars_schema for s, m in SOURCE_MODULES.items()}
    frames = {
        name: conform(frame, {**source_schemas[name.removeprefix("strict_")], PARTITION_DATE: pl.Date()})
        for name, frame in frames.items()
    }
    chosen, used = routed_inputs(context, warehouse, frames, days)
    result, stats = unify_touchpoints(
        chosen["ads"], chosen["social"], chosen["web"], chosen["email"], chosen["crm"], identity, days
    )
    routes = {f"strict_days_{source}": ", ".join(d) for source, d in used.items() if d}
    missing = missing_source_days(context.instance, days)
    if missing:
        context.log.warning(
            "built without sources that have not landed yet (rebuilt when they do): "
            + "; ".join(f"{source} {', '.join(d)}" for source, d in missing.items())
        )
    gaps = {f"missing_days_{source}": ", ".join(d) for source, d in missing.items()}
    return result, {**stats, **routes, **gaps}
