"""Benchmark of the telemetry chain's scoring step, its backfill strategies and its detection quality.

    python bench/telemetry.py                      # full size (a few minutes on 2 cores)
    python bench/telemetry.py --quick              # smaller corpora, about a minute
    POLARS_MAX_THREADS=1 python bench/telemetry.py # one core, as the issue's ≥ 1M points/s per core asks

Everything runs in a temporary INTELLIGENCE_HOME and an in-memory Dagster instance; nothing outside it is
touched. Points are written straight into the lake's `telemetry/points` partitions from the seeded generator
(`simulate_telemetry`): this benchmark is about scoring, not CSV parsing (the points asset's own throughput is
printed separately on a smaller landing corpus).

1. **Throughput** on 20 hosts × 6 metrics × 28 days at 5 min (about 1M points):
   - the raw detector call `score_points` (best of 3);
   - the asset's function (`score_days`: lookback filter, scoring, sorting) plus its contract validation;
   - the asset through `dg.materialize` (one single-run backfill of the 28 days: reading the lake, scoring,
     the contract and its checks, writing 28 partition files);
   - a pandas baseline doing a comparable robust scoring: per stream, |x - rolling median| / (1.4826 × rolling
     MAD, floored at a tenth of the rolling std) over one day (288 points), with `groupby().rolling().median()`,
     kept only where it exceeds its own
     maximum of the previous hour (onsets), mapped to [0, 1] as 1 - exp(-z / 10).
2. **Backfill of 365 days** (10 hosts × 6 metrics at 5 min, about 6.3M points): one single-run backfill through
   the asset, one unpartitioned call of `score_points` on everything, and one run per partition (a sample of
   days through `dg.materialize`, extrapolated to 365; each run rescores its 14-day lookback).
3. **Detection quality** of the 28-day corpus through the `detection_quality` asset (NAB windowed scoring of
   the asset's scores against the generator's labels), and of the pandas baseline for comparison.

Results are printed and written as JSON to `bench/results/` (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402

from assets.telemetry import anomaly_scores, detection_quality, points  # noqa: E402
from assets.telemetry.detectors import score_points  # noqa: E402
from assets.telemetry.windowed_scoring import score_detections  # noqa: E402
from intelligence.resources import build_resources  # noqa: E402
from intelligence.settings import Settings  # noqa: E402
from intelligence.synthetic.telemetry import TelemetryConfig, generate_telemetry, simulate_telemetry  # noqa: E402

START = dt.date(2024, 1, 1)
ASSETS: list[dg.AssetsDefinition | dg.AssetSpec] = [
    points.landing_telemetry,
    points.points,
    anomaly_scores.anomaly_scores,
    detection_quality.detection_quality,
]
SCORES = dg.AssetSelection.assets(["telemetry", "anomaly_scores"]).required_multi_asset_neighbors()
QUALITY = dg.AssetSelection.assets(["telemetry", "detection_quality"]).required_multi_asset_neighbors()
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write_points_lake(config: Settings, frame: pl.DataFrame) -> list[dt.date]:
    """The points as the points asset would have written them: one file per UTC day."""
    folder = config.lake / "telemetry" / "points"
    folder.mkdir(parents=True, exist_ok=True)
    frame = frame.with_columns(pl.col("timestamp").dt.date().alias("day"))
    days = []
    for (day,), part in frame.partition_by("day", as_dict=True, maintain_order=True).items():
        part.select(list(points.SCHEMA)).write_parquet(folder / f"{day}.parquet")
        days.append(day)
    return sorted(days)


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def pandas_baseline(frame: pl.DataFrame, window: int = 288) -> pd.DataFrame:
    """|x - rolling median| / (1.4826 × rolling MAD) per stream over `window` previous points (causal)."""
    df = frame.select("host", "metric", "timestamp", "value").to_pandas()
    df = df.sort_values(["host", "metric", "timestamp"], kind="stable").reset_index(drop=True)
    grouped = df.groupby(["host", "metric"], sort=False)["value"]
    median = grouped.rolling(window, min_periods=12).median().reset_index(level=[0, 1], drop=True)
    deviation = (df["value"] - median).abs()
    mad = (
        deviation.groupby([df["host"], df["metric"]], sort=False)
        .rolling(window, min_periods=12)
        .median()
        .reset_index(level=[0, 1], drop=True)
    )
    # quantised streams have a MAD of 0 most of the time: floor the scale at a tenth of the rolling std
    std = grouped.rolling(window, min_periods=12).std().reset_index(level=[0, 1], drop=True)
    z = (deviation / np.maximum(1.4826 * mad, 0.1 * std).clip(lower=1e-9)).fillna(0.0)
    # alert on onsets only: a point scores where z exceeds its maximum over the previous hour (12 points), as
    # NAB-style scoring punishes every repeated alert of one episode
    recent = z.groupby([df["host"], df["metric"]], sort=False).shift(1)
    recent = recent.groupby([df["host"], df["metric"]], sort=False).rolling(12, min_periods=1).max()
    recent = recent.reset_index(level=[0, 1], drop=True).fillna(0.0)
    z = z.where(z > recent, 0.0)
    df["anomaly_score"] = (1.0 - np.exp(-z / 10.0)).clip(0.0, 1.0)
    return df


def throughput(home: Path, hosts: int, days: int) -> tuple[dict[str, Any], dict[str, Any], Any]:
    config = Settings(home=home, start_date=START)
    sim = simulate_telemetry(TelemetryConfig(seed=7, hosts=hosts, days=days))
    pts = sim.points
    all_days = write_points_lake(config, pts)
    labels_dir = config.landing / "telemetry_labels"
    labels_dir.mkdir(parents=True, exist_ok=True)
    labels = {k: [[a.isoformat(), b.isoformat()] for a, b in v] for k, v in sim.labels.items()}
    (labels_dir / "incidents.json").write_text(json.dumps(labels))
    n = pts.height
    score_points(pts.head(10_000))
    raw = best_of(lambda: score_points(pts), 3)

    def asset_core() -> None:
        scored = anomaly_scores.score_days(
            pl.scan_parquet(config.lake / "telemetry" / "points" / "*.parquet"), all_days
        )
        anomaly_scores.CONTRACT.validate(scored)

    core = best_of(asset_core, 2)
    resources = build_resources(config)
    with dg.DagsterInstance.ephemeral() as instance:
        start = time.perf_counter()
        result = dg.materialize(
            ASSETS,
            run_config=QUIET,
            selection=SCORES,
            instance=instance,
            resources=resources,
            tags=range_tags(all_days[0], all_days[-1]),
        )
        through = time.perf_counter() - start
        assert result.success
        start = time.perf_counter()
        quality_run = dg.materialize(
            ASSETS, run_config=QUIET, selection=QUALITY, instance=instance, resources=resources
        )
        quality_seconds = time.perf_counter() - start
        assert quality_run.success
    quality_key = dg.AssetKey(["telemetry", "detection_quality"])
    event = next(e for e in quality_run.get_asset_materialization_events() if e.asset_key == quality_key)
    quality_md = str(event.materialization.metadata["quality"].value)
    baseline_start = time.perf_counter()
    baseline = pandas_baseline(pts)
    pandas_seconds = time.perf_counter() - baseline_start
    baseline_quality = score_detections(pl.from_pandas(baseline), sim.labels)
    asset_quality = pl.read_parquet(config.lake / "telemetry" / "detection_quality.parquet")
    stats = {
        "points": n,
        "streams": pts.select("host", "metric").n_unique(),
        "polars_threads": pl.thread_pool_size(),
        "raw_detector_s": round(raw, 3),
        "raw_detector_points_per_s": round(n / raw),
        "asset_function_s": round(core, 3),
        "asset_function_points_per_s": round(n / core),
        "asset_materialize_s": round(through, 3),
        "asset_materialize_points_per_s": round(n / through),
        "pandas_baseline_s": round(pandas_seconds, 3),
        "pandas_baseline_points_per_s": round(n / pandas_seconds),
        "ratio_raw_vs_pandas": round(pandas_seconds / raw, 1),
        "ratio_asset_function_vs_pandas": round(pandas_seconds / core, 1),
        "ratio_asset_materialize_vs_pandas": round(pandas_seconds / through, 1),
    }
    quality = {
        "asset": asset_quality.to_dicts(),
        "asset_markdown": quality_md,
        "detection_quality_run_s": round(quality_seconds, 3),
        "pandas_baseline": {
            name: {"score": round(r.score, 1), "threshold": round(r.threshold, 4), "tp": r.tp, "fp": r.fp, "fn": r.fn}
            for name, r in baseline_quality.profiles.items()
        },
    }
    return stats, quality, sim


def points_asset_throughput(home: Path, hosts: int, days: int) -> dict[str, Any]:
    """The points asset on generated landing CSVs (one file per stream and day): first run builds the index."""
    config = Settings(home=home, start_date=START)
    summary = generate_telemetry(TelemetryConfig(seed=9, hosts=hosts, days=days), config.landing, config.truth)
    resources = build_resources(config)
    last = START + dt.timedelta(days=days - 1)
    selection = dg.AssetSelection.assets(["telemetry", "points"]).required_multi_asset_neighbors()
    with dg.DagsterInstance.ephemeral() as instance:
        start = time.perf_counter()
        ok = dg.materialize(
            ASSETS,
            run_config=QUIET,
            selection=selection,
            instance=instance,
            resources=resources,
            tags=range_tags(START, last),
        )
        seconds = time.perf_counter() - start
        assert ok.success
        start = time.perf_counter()
        one = dg.materialize(
            ASSETS,
            run_config=QUIET,
            selection=selection,
            instance=instance,
            resources=resources,
            partition_key=last.isoformat(),
        )
        day_seconds = time.perf_counter() - start
        assert one.success
    return {
        "files": summary.files_written,
        "rows": summary.rows_written,
        "range_run_s": round(seconds, 3),
        "rows_per_s": round(summary.rows_written / seconds),
        "one_day_with_index_s": round(day_seconds, 3),
    }


def backfill(home: Path, hosts: int, days: int, sample: int) -> dict[str, Any]:
    config = Settings(home=home, start_date=START)
    sim = simulate_telemetry(TelemetryConfig(seed=8, hosts=hosts, days=days, incidents_per_host=days / 14))
    all_days = write_points_lake(config, sim.points)
    n = sim.points.height
    start = time.perf_counter()
    direct = score_points(sim.points)
    unpartitioned = time.perf_counter() - start
    resources = build_resources(config)
    picks = [all_days[int(i)] for i in np.linspace(20, len(all_days) - 1, sample)]
    with dg.DagsterInstance.ephemeral() as instance:
        start = time.perf_counter()
        result = dg.materialize(
            ASSETS,
            run_config=QUIET,
            selection=SCORES,
            instance=instance,
            resources=resources,
            tags=range_tags(all_days[0], all_days[-1]),
        )
        single_run = time.perf_counter() - start
        assert result.success
        lake = config.lake / "telemetry" / "anomaly_scores"
        backfilled = {day: pl.read_parquet(lake / f"{day}.parquet") for day in picks}
        per_run = []
        for day in picks:
            start = time.perf_counter()
            one = dg.materialize(
                ASSETS,
                run_config=QUIET,
                selection=SCORES,
                instance=instance,
                resources=resources,
                partition_key=day.isoformat(),
            )
            per_run.append(time.perf_counter() - start)
            assert one.success
            assert pl.read_parquet(lake / f"{day}.parquet").equals(backfilled[day]), f"{day}: run != backfill"
    folder = config.lake / "telemetry" / "points"

    def lookback_scan(day: dt.date) -> pl.LazyFrame:  # what the IO manager hands a one-day run
        wanted = [day - dt.timedelta(days=k) for k in range(anomaly_scores.LOOKBACK.days + 1)]
        return pl.scan_parquet([folder / f"{d}.parquet" for d in wanted if (folder / f"{d}.parquet").exists()])

    pure = best_of(lambda: [anomaly_scores.score_days(lookback_scan(d), [d]) for d in picks], 1)
    day_key = pl.col("timestamp").dt.date()
    check = direct.filter(day_key.is_in(picks)).sort("host", "metric", "timestamp")
    same = pl.concat(backfilled.values()).sort("host", "metric", "timestamp")
    identical = check.select(same.drop("day").columns).equals(same.drop("day"))
    per_partition = float(np.mean(per_run)) * len(all_days)
    return {
        "days": len(all_days),
        "points": n,
        "streams": sim.points.select("host", "metric").n_unique(),
        "unpartitioned_score_points_s": round(unpartitioned, 2),
        "single_run_backfill_s": round(single_run, 2),
        "per_partition_runs_sampled": len(per_run),
        "per_partition_run_mean_s": round(float(np.mean(per_run)), 2),
        "per_partition_extrapolated_s": round(per_partition, 1),
        "per_partition_pure_scoring_extrapolated_s": round(pure / len(picks) * len(all_days), 1),
        "backfill_equals_direct_on_sample": identical,
        "ratio_per_partition_vs_single_run": round(per_partition / single_run, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller corpora (about a minute)")
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--backfill-hosts", type=int, default=10)
    parser.add_argument("--backfill-days", type=int, default=365)
    parser.add_argument("--sample", type=int, default=5, help="partitions run one by one, then extrapolated")
    args = parser.parse_args(argv)
    if args.quick:
        args = replace_args(args, hosts=6, backfill_hosts=3, backfill_days=120, sample=3)
    report: dict[str, Any] = {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        os.environ["INTELLIGENCE_HOME"] = str(Path(tmp) / "home")
        stats, quality, _ = throughput(Path(tmp) / "throughput", args.hosts, args.days)
        report["throughput"], report["quality"] = stats, quality
        print_throughput(stats)
        pts = points_asset_throughput(Path(tmp) / "points", 3 if args.quick else 6, 14)
        report["points_asset"] = pts
        print(
            f"points asset: {pts['rows']:,} landing rows in {pts['files']} files → {pts['rows_per_s']:,} rows/s "
            f"({pts['range_run_s']} s, index built); one day afterwards {pts['one_day_with_index_s']} s"
        )
        bf = backfill(Path(tmp) / "backfill", args.backfill_hosts, args.backfill_days, args.sample)
        report["backfill"] = bf
        print(
            f"backfill of {bf['days']} days ({bf['points']:,} points, {bf['streams']} streams):\n"
            f"  one single-run backfill (asset)   {bf['single_run_backfill_s']:>8} s\n"
            f"  one unpartitioned score_points    {bf['unpartitioned_score_points_s']:>8} s\n"
            f"  one run per partition (asset)     {bf['per_partition_extrapolated_s']:>8} s  (mean "
            f"{bf['per_partition_run_mean_s']} s × {bf['days']}, from {bf['per_partition_runs_sampled']} runs; "
            f"×{bf['ratio_per_partition_vs_single_run']} the single run)\n"
            f"  per partition, scoring only       {bf['per_partition_pure_scoring_extrapolated_s']:>8} s\n"
            f"  single run == direct scores on the sampled days: {bf['backfill_equals_direct_on_sample']}"
        )
        print("detection quality of the asset's scores (detection_quality asset):")
        print("  " + quality["asset_markdown"].replace("\n", "\n  "))
        baseline = quality["pandas_baseline"]
        print(
            "  pandas baseline: "
            + ", ".join(f"{k} {v['score']} (tp {v['tp']}, fp {v['fp']}, fn {v['fn']})" for k, v in baseline.items())
        )
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"telemetry-{stamp}.json"
    path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"written {path.relative_to(ROOT)}")
    return 0


def print_throughput(stats: dict[str, Any]) -> None:
    rows = [
        ("raw detector", "raw_detector", ""),
        ("asset function", "asset_function", ", with the contract"),
        ("asset (materialize)", "asset_materialize", ", lake in and out, checks"),
        ("pandas rolling MAD", "pandas_baseline", ""),
    ]
    print(f"scoring {stats['points']:,} points ({stats['streams']} streams, polars threads {stats['polars_threads']}):")
    for label, key, note in rows:
        print(f"  {label:<20} {stats[key + '_points_per_s']:>12,} points/s ({stats[key + '_s']} s{note})")
    print(
        f"  ratios vs pandas: raw ×{stats['ratio_raw_vs_pandas']}, asset function "
        f"×{stats['ratio_asset_function_vs_pandas']}, materialize ×{stats['ratio_asset_materialize_vs_pandas']}"
    )


def replace_args(args: argparse.Namespace, **changes: Any) -> argparse.Namespace:
    values = vars(args) | changes
    return argparse.Namespace(**values)


if __name__ == "__main__":
    raise SystemExit(main())
