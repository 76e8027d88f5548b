"""Detection quality: the anomaly scores judged against labelled incident windows (NAB's windowed method).

Labels are `landing/telemetry_labels/*.json` (`{"<host>/<metric>": [["start", "end"], ...]}`); streams without a
key count too (all their detections are false positives), and label keys without points are reported. The
scoring is `windowed_scoring.score_detections`: three cost profiles, one threshold per profile chosen over all
streams, normalised so a detector that never fires scores 0 and a perfect one 100, with TP / FP / FN counts and
the median detection delay.

Unpartitioned, over every materialized `anomaly_scores` partition: the method's probation period (the first
15 % of each stream) and its threshold sweep are defined on whole streams, so scoring day by day would
neither be the standard figure nor add up to it. It is cheap (a sort of the scores) and run on demand, or after
a backfill.
"""

import math

import dagster as dg
import dataframely as dy
import polars as pl

from assets.telemetry import anomaly_scores as scores_module
from assets.telemetry.windowed_scoring import PROFILES, LabelError, Labels, load_labels, score_detections
from intelligence.contracts import Contract
from intelligence.frames import conform
from intelligence.modules import module
from resources.landing_zone import LandingPathError, LandingZone

LABELS_FOLDER = "telemetry_labels"


class ProfileScore(dy.Schema):
    profile = dy.Enum(list(PROFILES), primary_key=True)
    score = dy.Float64(nullable=True, allow_nan=True, description="Normalised: never firing 0, perfect 100.")
    threshold = dy.Float64(nullable=True, allow_inf=True, description="Chosen to maximise the profile's total.")
    tp = dy.Int64(nullable=False, description="Label windows detected.")
    fp = dy.Int64(nullable=False, description="Detections outside every window.")
    fn = dy.Int64(nullable=False, description="Label windows missed.")
    median_delay_s = dy.Float64(nullable=True, description="First detection minus window start (median).")
    raw = dy.Float64(nullable=True, allow_nan=True)
    windows = dy.Int64(nullable=False)
    streams = dy.Int64(nullable=False)
    points = dy.Int64(nullable=False)


CONTRACT = Contract(
    schema=ProfileScore,
    version="1.0.0",
    owner="team:sre",
    description="Windowed (NAB) detection scores of the anomaly scores per cost profile.",
)
SCHEMA = CONTRACT.polars_schema


def read_labels(landing: LandingZone) -> tuple[Labels, list[str]]:
    """Every labels file of the landing zone, merged; and notes (no labels, files refused or malformed)."""
    try:
        folder = landing.resolve(LABELS_FOLDER)
    except LandingPathError as exc:
        return {}, [f"refused: {exc}"]
    files, skipped = landing.files_in(LABELS_FOLDER, suffixes=(".json",))
    notes = [f"{r.path}: {'; '.join(r.notes)}" for r in skipped]
    if not files:
        return {}, [*notes, f"no labels in landing/{LABELS_FOLDER}/*.json"]
    labels: Labels = {}
    for path in files:
        try:
            for key, windows in load_labels(path).items():
                labels.setdefault(key, []).extend(windows)
        except LabelError as exc:
            notes.append(str(exc).replace(str(folder), f"landing/{LABELS_FOLDER}"))
    return {k: sorted(v) for k, v in labels.items()}, notes


def quality_table(scores: pl.LazyFrame, labels: Labels) -> tuple[pl.DataFrame, dict[str, object]]:
    """One row per profile, and facts about the scoring (windows not scored, label streams without points)."""
    frame = (
        conform(scores, scores_module.SCHEMA)
        .select("host", "metric", "timestamp", "anomaly_score")
        .sort("host", "metric", "timestamp")
        .collect()
    )
    if not labels or frame.height == 0:
        return pl.DataFrame(schema=SCHEMA), {"points": frame.height}
    result = score_detections(frame, labels)
    table = result.to_frame().with_columns(
        pl.lit(result.windows).alias("windows"),
        pl.lit(result.streams).alias("streams"),
        pl.lit(result.points).alias("points"),
    )
    table = table.select([pl.col(c).cast(t) for c, t in SCHEMA.items()])
    return table, {
        "points": result.points,
        "scored_points": result.scored_points,
        "windows_not_scored": result.windows_not_scored,
        "label_streams_without_points": len(result.label_streams_without_points),
    }


def markdown(table: pl.DataFrame) -> str:
    lines = [
        "| profile | score | threshold | TP | FP | FN | median delay |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table.iter_rows(named=True):
        delay = "–" if r["median_delay_s"] is None else f"{r['median_delay_s'] / 60:.1f} min"
        score = "–" if r["score"] is None or math.isnan(r["score"]) else f"{r['score']:.1f}"
        threshold = "never" if r["threshold"] is None or math.isinf(r["threshold"]) else f"{r['threshold']:.3f}"
        lines.append(f"| {r['profile']} | {score} | {threshold} | {r['tp']} | {r['fp']} | {r['fn']} | {delay} |")
    return "\n".join(lines)


@module(
    key=["telemetry", "detection_quality"],
    contract=CONTRACT,
    ins={
        "anomaly_scores": dg.AssetIn(["telemetry", "anomaly_scores"], metadata={"allow_missing_partitions": True}),
    },
)
def detection_quality(landing: LandingZone, anomaly_scores: pl.LazyFrame) -> tuple[pl.DataFrame, dict[str, object]]:
    """Windowed (NAB) detection scores of all anomaly scores against landing/telemetry_labels, per cost profile."""
    labels, notes = read_labels(landing)
    table, facts = quality_table(anomaly_scores, labels)
    return table, {
        **facts,
        "label_windows": sum(len(v) for v in labels.values()),
        "label_streams": len(labels),
        "quality": dg.MetadataValue.md(markdown(table) if table.height else "_no labels or no scores_"),
        "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in notes) or "_none_"),
        **{
            f"score_{r['profile']}": float(r["score"])
            for r in table.iter_rows(named=True)
            if r["score"] is not None and not math.isnan(r["score"])
        },
    }
