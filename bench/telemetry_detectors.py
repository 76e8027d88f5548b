"""Benchmark of the telemetry anomaly detector: single-thread throughput and windowed (NAB-style) scores.

    POLARS_MAX_THREADS=1 python bench/telemetry_detectors.py            # both sets, full size
    python bench/telemetry_detectors.py --set tuning --quick             # smaller corpora, faster

Throughput: `score_points` on about 200 streams × 8k points at 5-minute cadence (34 hosts × 6 metrics × 28
days), best of three runs, with polars pinned to one thread (this script sets `POLARS_MAX_THREADS=1` before
importing polars unless it is already set; numpy's elementwise work is single-threaded anyway).

Quality: the labelled corpora of `intelligence.synthetic.telemetry.BENCH_CORPORA` (hosts × metrics sharing load
and incidents, at 1 min, 5 min and 1 h) and `CLOUD_BENCH_CORPORA` (independent 5-minute streams shaped like real
machine and cloud metrics, mostly two weeks long), each split into a *tuning* set (the seeds looked at while
designing the detector) and a *holdout* set (same shapes, other seeds, never looked at while tuning). Each set
is scored as one corpus (one threshold per profile for all its streams) with
`assets.telemetry.windowed_scoring.score_detections`, against two labellings:

- `incident`: the generator's true incident windows `[start, end]`;
- `nab`: NAB-style windows, centred on each incident's start, total width 10 % of the stream's span shared
  among its incidents (so detection at the onset sits mid-window), which is how NAB's real data are labelled.

The holdout set is also scored at the thresholds chosen on the tuning set (`@ tuning thresholds`), the honest
figure for unseen data. Each set is also pooled per family and cadence, and all 5-minute corpora together (the
real data the detector targets are 5-minute series), and reported per corpus. Results are printed, and written
as JSON to `bench/results/` (git-ignored).
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from assets.telemetry.detectors import LOOKBACK, score_points  # noqa: E402
from assets.telemetry.windowed_scoring import WindowedScoringResult, score_detections  # noqa: E402
from intelligence.synthetic.telemetry import (  # noqa: E402
    BENCH_CORPORA,
    CLOUD_BENCH_CORPORA,
    CloudConfig,
    CloudSimulation,
    Simulation,
    TelemetryConfig,
    simulate_cloud_streams,
    simulate_telemetry,
)

Labels = dict[str, list[tuple[dt.datetime, dt.datetime]]]


def throughput(quick: bool) -> dict[str, float]:
    cfg = TelemetryConfig(seed=7, hosts=8 if quick else 34, days=28)
    points = simulate_telemetry(cfg).points
    score_points(points.head(10_000))  # warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        score_points(points)
        best = min(best, time.perf_counter() - start)
    streams = points.select("host", "metric").unique().height
    return {
        "points": points.height,
        "streams": streams,
        "seconds": round(best, 3),
        "points_per_second": round(points.height / best),
        "polars_threads": float(pl.thread_pool_size()),
    }


def nab_style_windows(sim: Simulation | CloudSimulation) -> Labels:
    spans = sim.points.group_by("host", "metric").agg(
        pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last")
    )
    span = {f"{r['host']}/{r['metric']}": r["last"] - r["first"] for r in spans.iter_rows(named=True)}
    out: Labels = {}
    for key, windows in sim.labels.items():
        if not windows or key not in span:
            out[key] = []
            continue
        half = span[key] * 0.1 / len(windows) / 2
        out[key] = [(start - half, start + half) for start, _ in windows]
    return out


def _prefixed(frame: pl.DataFrame, tag: str) -> pl.DataFrame:
    return frame.with_columns(pl.concat_str(pl.lit(f"{tag}:"), "host").alias("host"))


def corpus_scores(which: str, quick: bool) -> tuple[pl.DataFrame, Labels, Labels, list[dict[str, object]]]:
    frames: list[pl.DataFrame] = []
    incident: Labels = {}
    nab: Labels = {}
    per_corpus: list[dict[str, object]] = []
    corpora: list[tuple[str, TelemetryConfig | CloudConfig]] = [(n, c) for n, c in BENCH_CORPORA if n == which]
    corpora += [(n, c) for n, c in CLOUD_BENCH_CORPORA if n == which]
    for _, cfg in corpora:
        sim: Simulation | CloudSimulation
        if isinstance(cfg, CloudConfig):
            cfg = replace(cfg, streams=max(12, cfg.streams // 3)) if quick else cfg
            sim = simulate_cloud_streams(cfg)
            tag, family, shape = f"c{cfg.seed}", "cloud", f"{cfg.streams} streams"
        else:
            cfg = replace(cfg, hosts=max(4, cfg.hosts // 3)) if quick else cfg
            sim = simulate_telemetry(cfg)
            tag, family, shape = f"s{cfg.seed}", "hosts", f"{cfg.hosts} hosts x {cfg.days} d"
        scored = _prefixed(score_points(sim.points), tag).select("host", "metric", "timestamp", "anomaly_score")
        inc = {f"{tag}:{k}": v for k, v in sim.labels.items()}
        nb = {f"{tag}:{k}": v for k, v in nab_style_windows(sim).items()}
        frames.append(scored)
        incident.update(inc)
        nab.update(nb)
        per_corpus.append(
            {
                "tag": tag,
                "family": family,
                "shape": shape,
                "seed": cfg.seed,
                "cadence_s": cfg.cadence_seconds,
                "points": sim.points.height,
                "incident": _summary(score_detections(scored, inc)),
                "nab": _summary(score_detections(scored, nb)),
            }
        )
    return pl.concat(frames), incident, nab, per_corpus


def _summary(result: WindowedScoringResult) -> dict[str, object]:
    return {
        name: {
            "score": round(r.score, 1),
            "threshold": round(r.threshold, 4),
            "tp": r.tp,
            "fp": r.fp,
            "fn": r.fn,
            "median_delay_min": None if r.median_delay is None else round(r.median_delay.total_seconds() / 60, 1),
        }
        for name, r in result.profiles.items()
    }


def _line(label: str, summary: dict[str, object]) -> str:
    parts = []
    for name, r in summary.items():
        assert isinstance(r, dict)
        parts.append(f"{name} {r['score']:5.1f} (thr {r['threshold']:.3f}, tp {r['tp']}, fn {r['fn']}, fp {r['fp']})")
    return f"  {label:<28} " + " | ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("tuning", "holdout", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="a third of the hosts per corpus")
    parser.add_argument("--no-throughput", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, object] = {"lookback_days": LOOKBACK.days, "quick": args.quick}

    if not args.no_throughput:
        tp = throughput(args.quick)
        report["throughput"] = tp
        print(
            f"throughput: {tp['points_per_second']:,.0f} points/s ({tp['points']:,} points, {tp['streams']} streams,"
            f" {tp['seconds']} s, polars threads {tp['polars_threads']:.0f})"
        )

    sets = ("tuning", "holdout") if args.set == "both" else (args.set,)
    tuned: dict[str, dict[str, float]] = {}
    for which in sets:
        scores, incident, nab, per_corpus = corpus_scores(which, args.quick)
        results = {"incident": score_detections(scores, incident), "nab": score_detections(scores, nab)}
        entry: dict[str, object] = {"corpora": per_corpus}
        print(f"{which} set ({len(per_corpus)} corpora, {scores.height:,} points):")
        for label, res in results.items():
            entry[label] = _summary(res)
            print(_line(f"{label} windows", _summary(res)))
            if which == "tuning":
                tuned[label] = {p: r.threshold for p, r in res.profiles.items()}
        if which == "holdout" and tuned:
            for label, labels in (("incident", incident), ("nab", nab)):
                fixed = _summary(score_detections(scores, labels, thresholds=tuned[label]))
                entry[f"{label}@tuning-thr"] = fixed
                print(_line(f"{label} @ tuning thresholds", fixed))
        groups: dict[str, set[str]] = {}
        for c in per_corpus:  # pooled per family and cadence: the held-out real data are 5-minute series
            groups.setdefault(f"{c['family']} {c['cadence_s']} s", set()).add(str(c["tag"]))
        groups["all 300 s"] = {str(c["tag"]) for c in per_corpus if c["cadence_s"] == 300}
        for name, tags in groups.items():
            subset = scores.filter(pl.col("host").str.extract(r"^([sc]\d+):").is_in(list(tags)))
            for label, labels in (("incident", incident), ("nab", nab)):
                picked = {k: v for k, v in labels.items() if k.split(":", 1)[0] in tags}
                summary = _summary(score_detections(subset, picked))
                entry[f"{label}@{name}"] = summary
                print(_line(f"{label}, {name}", summary))
        for c in per_corpus:
            std = c["incident"]["standard"]  # type: ignore[index]
            nab_std = c["nab"]["standard"]  # type: ignore[index]
            print(
                f"    {c['tag']} ({c['shape']}, {c['cadence_s']} s, {c['points']:,} pts): standard incident"
                f" {std['score']:.1f}, nab {nab_std['score']:.1f}"
            )
        report[which] = entry

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"telemetry_detectors-{stamp}.json"
    path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"written {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
