"""Incidents: anomaly events correlated across the metrics of a host (and across hosts) into known patterns.

Per host, events whose time spans overlap or lie within `CORRELATION_GAP` (30 min) of each other form one
incident. Streams that *stopped* are events too: the detector cannot score a stream that sends nothing, so gaps
are found here from the points (a stream silent for more than 1 h and 6 of its typical spacings; still open when
it has not come back by the last point of the window). The incident's pattern, first match wins:

=================== ==================================================================== =====================
pattern             evidence                                                             partial (one metric)
=================== ==================================================================== =====================
memory_leak         memory up and rising for at least 30 min, with errors up (the burst   memory rising ≥ 1 h
                    before the restart) or memory dropping back (the restart)            (before silent_failure)
traffic_surge       requests up with latency up (cpu up strengthens it)                   requests up
cpu_saturation      cpu up with latency up                                               cpu up
service_degradation latency up with errors up                                            errors up
silent_failure      a stream stopped or went flat (detector `flatline`), unless one of    —
                    the full matches above explains the incident
unclassified        anything else (e.g. latency up alone, a generic metric)               —
=================== ==================================================================== =====================

Confidence: a full match 0.6 plus up to 0.3 by the evidence's severity (plus 0.1 for a supporting metric); a
partial match 0.3 plus up to 0.3; a stopped stream 0.3 plus 0.1 per hour of silence (up to 0.95), a flat one
0.4 plus up to 0.3; unclassified 0.2 plus up to 0.2. The same pattern starting on `FLEET_MIN_HOSTS` (3) or more
hosts at once (each start within 30 min of the previous one) is one fleet-wide incident (scope `fleet`) with
all the hosts, instead of one per host.

Partitions work like `anomaly_events`: partition D correlates the latest versions of the events of partitions
D - 1 and D (its window) and reports the incidents that may not have been final at the end of D - 1; the id is
the scope (host or `fleet`) and the start, so an incident crossing midnight keeps its id (readers keep the row of
the latest partition). A range run computes each day's window separately and equals day-by-day runs.
"""

import datetime as dt

import dagster as dg
import dataframely as dy
import polars as pl

from assets.telemetry import anomaly_events as events_module
from assets.telemetry import points as points_module
from assets.telemetry.anomaly_events import BEFORE, GAP
from assets.telemetry.semantics import finite, number, role_expr
from intelligence import policy
from intelligence.contracts import Contract
from intelligence.frames import conform
from intelligence.modules import module
from intelligence.partitions import DAILY, lookback, partition_days

PATTERNS = [
    "memory_leak",
    "traffic_surge",
    "cpu_saturation",
    "service_degradation",
    "silent_failure",
    "unclassified",
]
CORRELATION_GAP = dt.timedelta(minutes=30)
STOP_MIN = dt.timedelta(hours=1)
STOP_CADENCES = 6.0
LEAK_MIN = dt.timedelta(minutes=30)
LEAK_ALONE_MIN = dt.timedelta(hours=1)
FLEET_MIN_HOSTS = 3
FLEET_SPREAD = dt.timedelta(minutes=30)  # "at once": each host's incident starts within this of the previous one
SETTLE = BEFORE + GAP + CORRELATION_GAP  # an incident ending this close to midnight may still grow
WINDOW = "_window"
AUTOMATION = policy.EAGER_ALLOWING_GAPS
_US = 1_000_000


class Incident(dy.Schema):
    incident_id = dy.String(primary_key=True, description="<host or fleet>|<start>: the same in every partition.")
    pattern = dy.Enum(PATTERNS, nullable=False)
    scope = dy.Enum(["host", "fleet"], nullable=False)
    hosts = dy.String(nullable=False, description="Comma-separated hosts.")
    host_count = dy.UInt32(nullable=False)
    start = dy.Datetime(nullable=False, time_zone="UTC")
    end = dy.Datetime(nullable=False, time_zone="UTC")
    status = dy.Enum(["open", "closed"], nullable=False)
    confidence = number("0..1: how well the evidence matches the pattern.", nullable=False)
    severity = number("0..1: the largest severity of the evidence.", nullable=False)
    signals = dy.String(nullable=False, description="The evidence as role:direction, e.g. latency:up,errors:up.")
    event_ids = dy.String(nullable=False, description="The anomaly events (and stopped streams), comma-separated.")
    evidence = dy.String(nullable=False, description="JSON list of the evidence events.")
    summary = dy.String(nullable=False)
    day = dy.Date(primary_key=True, description="The partition that reported this version of the incident.")

    @dy.rule()
    def scores_in_unit_interval(cls) -> pl.Expr:
        return (
            finite("confidence", "severity")
            & pl.col("confidence").is_between(0.0, 1.0)
            & pl.col("severity").is_between(0.0, 1.0)
            & (pl.col("start") <= pl.col("end"))
        )


CONTRACT = Contract(
    schema=Incident,
    version="1.0.0",
    owner="team:sre",
    description="Correlated anomaly events per host (or fleet-wide) with a failure pattern and confidence.",
)
SCHEMA = CONTRACT.polars_schema

EVIDENCE_SCHEMA: dict[str, pl.DataType] = {
    WINDOW: pl.Date(),
    "event_id": pl.String(),
    "kind": pl.String(),
    "host": pl.String(),
    "metric": pl.String(),
    "start": pl.Datetime("us", "UTC"),
    "peak": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "status": pl.String(),
    "direction": pl.String(),
    "peak_score": pl.Float64(),
    "severity": pl.Float64(),
    "reasons": pl.String(),
    "first_value": pl.Float64(),
    "max_value": pl.Float64(),
    "scale": pl.Float64(),
}


def _window_of_next_day(frame: pl.LazyFrame, day: pl.Expr, days: list[dt.date]) -> pl.LazyFrame:
    same = frame.with_columns(day.alias(WINDOW))
    after = frame.with_columns((day + pl.duration(days=1)).alias(WINDOW))
    return pl.concat([same, after]).filter(pl.col(WINDOW).is_in(list(days)))


def window_events(events: pl.LazyFrame, days: list[dt.date]) -> pl.LazyFrame:
    """Per window (day D), the latest version of each event reported by partitions D - 1 and D."""
    frame = conform(events, events_module.SCHEMA)
    rows = _window_of_next_day(frame, pl.col("day"), days)
    latest = rows.sort("day").group_by(WINDOW, "event_id", maintain_order=True).last()
    return latest.select(
        WINDOW,
        "event_id",
        pl.lit("anomaly").alias("kind"),
        "host",
        "metric",
        "start",
        "peak",
        "end",
        pl.col("status").cast(pl.String),
        pl.col("direction").cast(pl.String),
        "peak_score",
        "severity",
        "reasons",
        "first_value",
        "max_value",
        "scale",
    )


def stopped_streams(points: pl.LazyFrame, days: list[dt.date]) -> pl.LazyFrame:
    """Per window, the streams that went silent: gaps between points, and streams silent at the window's end."""
    frame = conform(points, points_module.SCHEMA).select("host", "metric", "timestamp")
    rows = _window_of_next_day(frame, pl.col("timestamp").dt.date(), days)
    stream = [WINDOW, "host", "metric"]
    ts = pl.col("timestamp")
    gaps = rows.sort(*stream, "timestamp").with_columns(
        ts.shift(1).over(stream).alias("_prev"),
        ts.diff().dt.total_microseconds().over(stream).alias("_gap"),
    )
    per_stream = gaps.group_by(stream).agg(
        pl.col("_gap").median().alias("_spacing"),
        ts.max().alias("_last"),
    )
    per_stream = per_stream.with_columns(
        pl.max_horizontal(
            pl.lit(int(STOP_MIN.total_seconds() * _US)), pl.col("_spacing").fill_null(0) * STOP_CADENCES
        ).alias("_threshold")
    )
    horizon = rows.group_by(WINDOW).agg(ts.max().alias("_horizon"))
    spacing = pl.duration(microseconds=pl.col("_spacing").fill_null(0))
    inner = (
        gaps.join(per_stream, on=stream)
        .filter(pl.col("_gap") > pl.col("_threshold"))
        .select(*stream, (pl.col("_prev") + spacing).alias("start"), ts.alias("end"), pl.lit("closed").alias("status"))
    )
    trailing = (
        per_stream.join(horizon, on=WINDOW)
        .filter((pl.col("_horizon") - pl.col("_last")).dt.total_microseconds() > pl.col("_threshold"))
        .select(*stream, (pl.col("_last") + spacing).alias("start"), pl.col("_horizon").alias("end"))
        .with_columns(pl.lit("open").alias("status"))
    )
    hours = (pl.col("end") - pl.col("start")).dt.total_seconds() / 3600.0
    return pl.concat([inner, trailing]).select(
        WINDOW,
        pl.format("{}|{}|stop|{}", "host", "metric", pl.col("start").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).alias(
            "event_id"
        ),
        pl.lit("stop").alias("kind"),
        "host",
        "metric",
        "start",
        pl.col("start").alias("peak"),
        "end",
        "status",
        pl.lit("down").alias("direction"),
        pl.lit(0.0).alias("peak_score"),
        (hours / 4.0).clip(0.0, 1.0).alias("severity"),
        pl.lit("stopped").alias("reasons"),
        pl.lit(None, pl.Float64).alias("first_value"),
        pl.lit(None, pl.Float64).alias("max_value"),
        pl.lit(None, pl.Float64).alias("scale"),
    )


def _cluster(
    frame: pl.DataFrame, by: list[str], gap: dt.timedelta, name: str, tie: str, by_start: bool = False
) -> pl.DataFrame:
    """Number the groups of rows (per `by`, by start) whose spans overlap or lie within `gap` of each other
    (with `by_start`, whose starts lie within `gap` of the previous start)."""
    reach = (pl.col("start") if by_start else pl.col("end").cum_max()).shift(1).over(by)
    new = (pl.col("start") > reach + gap).fill_null(True)
    return frame.sort(*by, "start", "end", tie).with_columns(new.cast(pl.UInt32).cum_sum().over(by).alias(name))


def _classify(flags: pl.LazyFrame) -> pl.LazyFrame:
    """Pattern and confidence of each host-level cluster from its flags (see the module docstring)."""
    has = pl.col
    sev = pl.col("severity")
    full = 0.6 + 0.3 * sev
    partial = 0.3 + 0.3 * sev
    pattern = (
        pl.when(has("leak") & (has("errors_up") | has("memory_down")))
        .then(pl.lit("memory_leak"))
        .when(has("requests_up") & has("latency_up"))
        .then(pl.lit("traffic_surge"))
        .when(has("cpu_up") & has("latency_up"))
        .then(pl.lit("cpu_saturation"))
        .when(has("latency_up") & has("errors_up"))
        .then(pl.lit("service_degradation"))
        .when(has("long_leak"))
        .then(pl.lit("memory_leak"))
        .when(has("stopped") | has("flat"))
        .then(pl.lit("silent_failure"))
        .when(has("requests_up"))
        .then(pl.lit("traffic_surge"))
        .when(has("cpu_up"))
        .then(pl.lit("cpu_saturation"))
        .when(has("errors_up"))
        .then(pl.lit("service_degradation"))
        .otherwise(pl.lit("unclassified"))
    )
    full_match = (
        (has("leak") & (has("errors_up") | has("memory_down")))
        | (has("requests_up") & has("latency_up"))
        | (has("cpu_up") & has("latency_up"))
        | (has("latency_up") & has("errors_up"))
    )
    support = (has("requests_up") & has("latency_up") & has("cpu_up")).cast(pl.Float64) * 0.1
    stop_conf = (0.3 + 0.1 * has("stopped_hours")).clip(0.0, 0.95)
    confidence = (
        pl.when(full_match)
        .then(full + support)
        .when(pattern == "silent_failure")
        .then(pl.max_horizontal(pl.when(has("stopped")).then(stop_conf).otherwise(0.0), 0.4 + 0.3 * sev))
        .when(pattern != "unclassified")
        .then(partial)
        .otherwise(0.2 + 0.2 * sev)
    )
    return flags.with_columns(pattern.alias("pattern"), confidence.clip(0.0, 0.99).alias("confidence"))


def correlate(evidence: pl.DataFrame) -> pl.DataFrame:
    """Evidence events (per window) → incidents per window: host clusters, classified, merged fleet-wide."""
    if evidence.height == 0:
        return pl.DataFrame(schema={WINDOW: pl.Date(), **{k: v for k, v in SCHEMA.items() if k != "day"}})
    role = role_expr("metric")
    duration = pl.col("end") - pl.col("start")
    rising = (pl.col("max_value") - pl.col("first_value")) >= 3.0 * pl.col("scale").fill_null(0.0)
    events = _cluster(evidence, [WINDOW, "host"], CORRELATION_GAP, "_cluster", tie="event_id").with_columns(
        role.alias("role"),
        (role + ":" + pl.col("direction")).alias("_signal"),
    )
    up = pl.col("direction") == "up"
    anomaly = pl.col("kind") == "anomaly"
    leak_event = anomaly & (pl.col("role") == "memory") & up & rising.fill_null(False)
    flags = (
        events.lazy()
        .group_by(WINDOW, "host", "_cluster", maintain_order=True)
        .agg(
            pl.col("start").min(),
            pl.col("end").max(),
            (pl.col("status") == "open").any().alias("_open"),
            pl.col("severity").max().alias("severity"),
            *[(anomaly & (pl.col("role") == r) & up).any().alias(f"{r}_up") for r in ("cpu", "latency", "errors")],
            (anomaly & (pl.col("role") == "requests") & up).any().alias("requests_up"),
            (anomaly & (pl.col("role") == "memory") & ~up).any().alias("memory_down"),
            (leak_event & (duration >= LEAK_MIN)).any().alias("leak"),
            (leak_event & (duration >= LEAK_ALONE_MIN)).any().alias("long_leak"),
            (pl.col("kind") == "stop").any().alias("stopped"),
            (anomaly & pl.col("reasons").str.contains("flatline")).any().alias("flat"),
            pl.when(pl.col("kind") == "stop")
            .then(duration.dt.total_seconds() / 3600.0)
            .max()
            .fill_null(0.0)
            .alias("stopped_hours"),
            pl.col("_signal").unique(maintain_order=True).str.join(",").alias("signals"),
            pl.col("event_id").sort().str.join(",").alias("event_ids"),
            pl.struct(
                "event_id",
                "kind",
                "host",
                "metric",
                "role",
                "direction",
                pl.col("start").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("start"),
                pl.col("peak").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("peak"),
                pl.col("end").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("end"),
                "status",
                pl.col("peak_score").round(4),
                pl.col("severity").round(4),
                "reasons",
            )
            .struct.json_encode()
            .str.join(",")
            .alias("_evidence"),
        )
    )
    host_incidents = _classify(flags).collect()
    return _merge_fleet(host_incidents)


def _merge_fleet(incidents: pl.DataFrame) -> pl.DataFrame:
    """The same pattern on FLEET_MIN_HOSTS or more hosts at overlapping times → one fleet-wide incident."""
    grouped = _cluster(incidents, [WINDOW, "pattern"], FLEET_SPREAD, "_fleet", tie="host", by_start=True).with_columns(
        pl.col("host").n_unique().over(WINDOW, "pattern", "_fleet").alias("_hosts")
    )
    fleet = pl.col("_hosts") >= FLEET_MIN_HOSTS
    merged = (
        grouped.with_columns(
            pl.when(fleet).then(pl.lit("fleet")).otherwise(pl.col("host")).alias("_scope_key"),
            pl.when(fleet).then(pl.col("_fleet")).otherwise(pl.col("_cluster")).alias("_group"),
        )
        .group_by(WINDOW, "_scope_key", "pattern", "_group", maintain_order=True)
        .agg(
            pl.col("start").min(),
            pl.col("end").max(),
            pl.col("_open").any(),
            pl.col("severity").max(),
            pl.col("confidence").max(),
            pl.col("host").unique().sort().str.join(",").alias("hosts"),
            pl.col("host").n_unique().cast(pl.UInt32).alias("host_count"),
            pl.col("signals")
            .str.split(",")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .unique(maintain_order=True)
            .str.join(",")
            .alias("signals"),
            pl.col("event_ids")
            .str.split(",")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .sort()
            .str.join(",")
            .alias("event_ids"),
            pl.col("_evidence").str.join(",").alias("_evidence"),
        )
    )
    scope = pl.when(pl.col("_scope_key") == "fleet").then(pl.lit("fleet")).otherwise(pl.lit("host"))
    where = pl.when(pl.col("_scope_key") == "fleet").then(
        pl.format("{} hosts ({})", pl.col("host_count"), pl.col("hosts"))
    )
    return merged.select(
        WINDOW,
        pl.format("{}|{}", "_scope_key", pl.col("start").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).alias("incident_id"),
        "pattern",
        scope.alias("scope"),
        "hosts",
        "host_count",
        "start",
        "end",
        pl.when(pl.col("_open")).then(pl.lit("open")).otherwise(pl.lit("closed")).alias("status"),
        pl.when(pl.col("_scope_key") == "fleet")
        .then((pl.col("confidence") + 0.1).clip(0.0, 0.99))
        .otherwise(pl.col("confidence"))
        .alias("confidence"),
        pl.col("severity").fill_null(0.0).clip(0.0, 1.0),
        "signals",
        "event_ids",
        pl.format("[{}]", "_evidence").alias("evidence"),
        pl.format(
            "{} on {}: {} from {} to {} (confidence {})",
            "pattern",
            where.otherwise(pl.col("hosts")),
            "signals",
            pl.col("start").dt.strftime("%Y-%m-%d %H:%M"),
            pl.col("end").dt.strftime("%Y-%m-%d %H:%M"),
            pl.col("confidence").round(2),
        ).alias("summary"),
    )


def find_incidents(events: pl.LazyFrame, points: pl.LazyFrame, days: list[dt.date]) -> pl.DataFrame:
    """The incidents each of `days` reports, from the events and points of `days` and the day before the first."""
    evidence = pl.concat([window_events(events, days), stopped_streams(points, days)], how="vertical_relaxed").collect()
    evidence = evidence.select([pl.col(c).cast(t) for c, t in EVIDENCE_SCHEMA.items()])
    incidents = correlate(evidence)
    window_start = pl.col(WINDOW).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    result = (
        incidents.filter(pl.col("end") >= window_start - SETTLE)
        .with_columns(pl.col(WINDOW).alias("day"))
        .select(list(SCHEMA))
        .sort("day", "start", "incident_id")
    )
    return result.with_columns([pl.col(c).cast(SCHEMA[c]) for c in ("pattern", "scope", "status")])


def latest_incidents(incidents: pl.LazyFrame | pl.DataFrame, as_of: dt.date | None = None) -> pl.DataFrame:
    """One row per incident: the version of the latest partition (up to `as_of`)."""
    frame = incidents.lazy() if isinstance(incidents, pl.DataFrame) else incidents
    frame = conform(frame, SCHEMA)
    if as_of is not None:
        frame = frame.filter(pl.col("day") <= as_of)
    return frame.sort("day").group_by("incident_id", maintain_order=True).last().sort("start", "incident_id").collect()


@module(
    key=["telemetry", "incidents"],
    contract=CONTRACT,
    partitions_def=DAILY,
    partition_column="day",
    automation_condition=AUTOMATION,
    ins={
        "anomaly_events": dg.AssetIn(
            ["telemetry", "anomaly_events"],
            partition_mapping=lookback(-1),
            metadata={"allow_missing_partitions": True},
        ),
        "points": dg.AssetIn(
            ["telemetry", "points"],
            partition_mapping=lookback(-1),
            metadata={"allow_missing_partitions": True},
        ),
    },
)
def incidents(
    context: dg.AssetExecutionContext, anomaly_events: pl.LazyFrame, points: pl.LazyFrame
) -> tuple[pl.DataFrame, dict[str, object]]:
    """Anomaly events correlated per host (and fleet-wide) into known failure patterns, with evidence and confidence."""
    found = find_incidents(anomaly_events, points, partition_days(context))
    counts = dict(found.group_by("pattern").len().iter_rows()) if found.height else {}
    table = ["| incident | pattern | hosts | start | end | confidence |", "|---|---|---|---|---|---:|"]
    for row in found.sort("confidence", descending=True).head(20).iter_rows(named=True):
        table.append(
            f"| {row['incident_id']} | {row['pattern']} | {row['hosts']} | {row['start']:%Y-%m-%d %H:%M} | "
            f"{row['end']:%H:%M} | {row['confidence']:.2f} |"
        )
    return found, {
        "incidents": found.height,
        **{f"pattern_{p}": int(counts.get(p, 0)) for p in PATTERNS},
        "top_incidents": dg.MetadataValue.md("\n".join(table) if found.height else "_no incidents_"),
    }
