"""Diagnostics: for each incident a partition reports, a diagnosis to start the investigation from.

- the window *before* (`BEFORE_WINDOW`, 2 h before the start) and *during* (start to end) the incident;
- the top deviating metrics of its host(s) during the incident (largest deviation from the baseline in noise
  units, as health counts it), with their mean value before and during and their largest anomaly score;
- the host's recent history: its incidents of the previous `HISTORY_DAYS` (7) days, per pattern;
- similar past incidents of the previous `SIMILAR_DAYS` (30) days on any host: same pattern (0.5) plus the overlap
  of their signals (Jaccard, up to 0.4) plus the same host (0.1); the best three scoring at least 0.5.

Partition D diagnoses the incidents of partition D; it reads the scores of D - 2 … D (the windows) and the
incidents of the 30 days before (history); a range run gives the same rows as day-by-day runs because each day
only looks at incidents reported up to that day.
"""

import datetime as dt
import json
from typing import Any

import dagster as dg
import dataframely as dy
import polars as pl

from assets.telemetry import anomaly_scores as scores_module
from assets.telemetry import incidents as incidents_module
from assets.telemetry.semantics import effective_deviation, trusted_deviation
from intelligence.contracts import Contract
from intelligence.frames import conform
from intelligence.modules import module
from intelligence.partitions import DAILY, lookback, partition_days

BEFORE_WINDOW = dt.timedelta(hours=2)
HISTORY_DAYS = 7
SIMILAR_DAYS = 30
TOP_METRICS = 3
TOP_SIMILAR = 3
MIN_SIMILARITY = 0.5


class Diagnosis(dy.Schema):
    incident_id = dy.String(primary_key=True)
    pattern = dy.String(nullable=False)
    hosts = dy.String(nullable=False)
    start = dy.Datetime(nullable=False, time_zone="UTC")
    end = dy.Datetime(nullable=False, time_zone="UTC")
    before_start = dy.Datetime(nullable=False, time_zone="UTC", description="Start of the window before.")
    confidence = dy.Float64(nullable=False, allow_inf=True, allow_nan=True)
    top_metrics = dy.String(nullable=False, description="JSON: the most deviating metrics, before and during.")
    history = dy.String(nullable=False, description="JSON: the host's incidents of the previous 7 days per pattern.")
    recent_incidents = dy.UInt32(nullable=False)
    similar = dy.String(nullable=False, description="JSON: similar past incidents with their similarity.")
    diagnosis = dy.String(nullable=False, description="Markdown summary.")
    day = dy.Date(primary_key=True)


CONTRACT = Contract(
    schema=Diagnosis,
    version="1.0.0",
    owner="team:sre",
    description="Per incident: the windows before and during, top deviating metrics, host history, similar incidents.",
)
SCHEMA = CONTRACT.polars_schema


def _signals(text: str | None) -> set[str]:
    return {s for s in (text or "").split(",") if s}


def top_metrics(scores: pl.DataFrame, incidents: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Per incident id, its most deviating metrics: before and during means, largest deviation and score."""
    if incidents.height == 0 or scores.height == 0:
        return {}
    targets = incidents.select(
        "incident_id",
        pl.col("hosts").str.split(",").alias("host"),
        (pl.col("start") - BEFORE_WINDOW).alias("_before"),
        "start",
        "end",
    ).explode("host")
    joined = (
        scores.join(targets, on="host")
        .filter(pl.col("timestamp") >= pl.col("_before"), pl.col("timestamp") <= pl.col("end"))
        .with_columns((pl.col("timestamp") >= pl.col("start")).alias("_during"))
    )
    during = pl.col("_during")
    per_metric = (
        joined.group_by("incident_id", "host", "metric")
        .agg(
            pl.col("value").filter(~during).mean().alias("before_mean"),
            pl.col("value").filter(during).mean().alias("during_mean"),
            pl.col("_severity").filter(during).max().alias("max_deviation"),
            pl.col("anomaly_score").filter(during).max().alias("max_score"),
            pl.col("baseline").filter(during).median().alias("baseline"),
        )
        .filter(pl.col("max_deviation").is_not_null() | (pl.col("max_score") > 0))
        .sort(
            "incident_id",
            pl.col("max_deviation").fill_null(0.0),
            "max_score",
            "host",
            "metric",
            descending=[False, True, True, False, False],
        )
        .group_by("incident_id", maintain_order=True)
        .head(TOP_METRICS)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in per_metric.iter_rows(named=True):
        entry = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k != "incident_id"}
        out.setdefault(row["incident_id"], []).append(entry)
    return out


def similar_incidents(incident: dict[str, Any], past: pl.DataFrame) -> list[dict[str, Any]]:
    """The past incidents most like this one (see the module docstring for the similarity)."""
    mine = _signals(incident["signals"])
    hosts = set(incident["hosts"].split(","))
    found = []
    for row in past.iter_rows(named=True):
        theirs = _signals(row["signals"])
        union = mine | theirs
        jaccard = len(mine & theirs) / len(union) if union else 0.0
        score = 0.5 * (row["pattern"] == incident["pattern"]) + 0.4 * jaccard
        score += 0.1 * bool(hosts & set(row["hosts"].split(",")))
        if score >= MIN_SIMILARITY:
            found.append(
                {
                    "incident_id": row["incident_id"],
                    "pattern": row["pattern"],
                    "hosts": row["hosts"],
                    "start": row["start"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "similarity": round(score, 3),
                }
            )
    found.sort(key=lambda f: (-f["similarity"], f["start"]), reverse=False)
    return found[:TOP_SIMILAR]


def _markdown(incident: dict[str, Any], metrics: list[dict[str, Any]], history: dict[str, int], similar: list) -> str:
    lines = [
        f"**{incident['pattern']}** on {incident['hosts']} from {incident['start']:%Y-%m-%d %H:%M} to "
        f"{incident['end']:%H:%M} UTC (confidence {incident['confidence']:.2f}; evidence {incident['signals']}).",
    ]
    if metrics:
        lines.append("Top deviating metrics (before → during, max deviation in noise units):")
        for m in metrics:
            before = "n/a" if m["before_mean"] is None else f"{m['before_mean']:.4g}"
            during = "n/a" if m["during_mean"] is None else f"{m['during_mean']:.4g}"
            dev = "n/a" if m["max_deviation"] is None else f"{m['max_deviation']:.1f}"
            lines.append(f"- {m['host']}/{m['metric']}: {before} → {during} (deviation {dev}, score {m['max_score']})")
    if history:
        lines.append(
            f"Host history ({HISTORY_DAYS} days): " + ", ".join(f"{p} ×{n}" for p, n in sorted(history.items()))
        )
    else:
        lines.append(f"Host history ({HISTORY_DAYS} days): no earlier incident.")
    if similar:
        lines.append("Similar past incidents: " + ", ".join(f"{s['incident_id']} ({s['similarity']})" for s in similar))
    return "\n".join(lines)


def diagnose(
    incidents: pl.LazyFrame | pl.DataFrame, scores: pl.LazyFrame | pl.DataFrame, days: list[dt.date]
) -> pl.DataFrame:
    """Diagnoses of the incidents reported by `days` (given the incidents of the 30 days before and the scores)."""
    inc = conform(incidents.lazy(), incidents_module.SCHEMA).collect()
    score_frame = (
        conform(scores.lazy(), scores_module.SCHEMA)
        .select(
            "host",
            "metric",
            "timestamp",
            "value",
            "baseline",
            "anomaly_score",
            effective_deviation(trusted_deviation()).alias("_severity"),
            pl.col("timestamp").dt.date().alias("_date"),
        )
        .collect()
    )
    rows: list[dict[str, Any]] = []
    for day in days:
        todays = inc.filter(pl.col("day") == day)
        if todays.height == 0:
            continue
        known = incidents_module.latest_incidents(inc.filter(pl.col("day") < day))
        window = score_frame.filter(pl.col("_date").is_between(day - dt.timedelta(days=2), day))
        metrics = top_metrics(window, todays)
        for incident in todays.iter_rows(named=True):
            start = incident["start"]
            hosts = set(incident["hosts"].split(","))
            past = known.filter(
                (pl.col("start") < start)
                & (pl.col("start") >= start - dt.timedelta(days=SIMILAR_DAYS))
                & (pl.col("incident_id") != incident["incident_id"])
            )
            recent = past.filter(
                (pl.col("start") >= start - dt.timedelta(days=HISTORY_DAYS))
                & pl.col("hosts").str.split(",").list.eval(pl.element().is_in(list(hosts))).list.any()
            )
            history = {str(p): int(n) for p, n in recent.group_by("pattern").len().iter_rows()}
            similar = similar_incidents(incident, past)
            top = metrics.get(incident["incident_id"], [])
            rows.append(
                {
                    "incident_id": incident["incident_id"],
                    "pattern": str(incident["pattern"]),
                    "hosts": incident["hosts"],
                    "start": start,
                    "end": incident["end"],
                    "before_start": start - BEFORE_WINDOW,
                    "confidence": incident["confidence"],
                    "top_metrics": json.dumps(top, default=str),
                    "history": json.dumps(history, sort_keys=True),
                    "recent_incidents": recent.height,
                    "similar": json.dumps(similar),
                    "diagnosis": _markdown(incident, top, history, similar),
                    "day": day,
                }
            )
    return pl.DataFrame(rows, schema=SCHEMA)


@module(
    key=["telemetry", "diagnostics"],
    contract=CONTRACT,
    partitions_def=DAILY,
    partition_column="day",
    ins={
        "incidents": dg.AssetIn(
            ["telemetry", "incidents"],
            partition_mapping=lookback(-SIMILAR_DAYS),
            metadata={"allow_missing_partitions": True},
        ),
        "anomaly_scores": dg.AssetIn(
            ["telemetry", "anomaly_scores"],
            partition_mapping=lookback(-2),
            metadata={"allow_missing_partitions": True},
        ),
    },
)
def diagnostics(
    context: dg.AssetExecutionContext, incidents: pl.LazyFrame, anomaly_scores: pl.LazyFrame
) -> tuple[pl.DataFrame, dict[str, object]]:
    """Per new incident: the windows before and during, top deviating metrics, host history, similar incidents."""
    found = diagnose(incidents, anomaly_scores, partition_days(context))
    shown = found.sort("confidence", descending=True).head(5)
    text = "\n\n---\n\n".join(f"`{r['incident_id']}`\n\n{r['diagnosis']}" for r in shown.iter_rows(named=True))
    return found, {"diagnoses": found.height, "latest_diagnoses": dg.MetadataValue.md(text or "_no incidents_")}
