"""Micro-benchmark of assets/marketing/attribution_models.py against raw DuckDB, polars and pandas scripts.

    .venv/bin/python bench/attribution_models.py                      # 10M touches, 12 channels, 3 repeats
    .venv/bin/python bench/attribution_models.py --touches 1000000 --engines ours,duckdb --repeats 1

Synthetic touches (seeded numpy) are written to Parquet once; every engine then runs in its own fresh process,
reading the Parquet files itself, so wall time includes the read and peak RSS is that process's own. Every
engine computes the same six heuristic models (first, last, linear per touch, linear per channel, time
decay, 40/20/40 position based) and the results are checked against ours. ``duckdb_fll`` is the reference
workload of STACK-FACTS.md: first, last and linear credit only. ``markov_shapley`` times exact Markov and
Shapley on --paths distinct paths.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("ours", "ours_all_models", "duckdb", "duckdb_fll", "polars", "pandas", "markov_shapley")
HALF_LIFE_DAYS = 7.0


def generate(
    n_touches: int, n_channels: int, max_length: int, conversion_rate: float, seed: int, int_ids: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Journeys of 1..max_length touches over 60 days, channels with skewed popularity, rows shuffled."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_length + 1, size=int(2.2 * n_touches / (1 + max_length)) + 10)
    cut = int(np.searchsorted(np.cumsum(lengths), n_touches)) + 1
    lengths = lengths[:cut]
    lengths[-1] -= int(lengths.sum()) - n_touches
    n_journeys = len(lengths)
    journey = np.repeat(np.arange(n_journeys), lengths)
    start = np.datetime64("2025-05-01T00:00:00", "us").astype(np.int64)
    # whole seconds, so that a few journeys have ties in ts
    ts = start + rng.integers(0, 60 * 86_400, size=n_touches) * 1_000_000
    channel = rng.choice(n_channels, size=n_touches, p=rng.dirichlet(np.full(n_channels, 2.0)))
    converts = rng.random(n_journeys) < conversion_rate
    last_ts = np.maximum.reduceat(ts, np.concatenate(([0], np.cumsum(lengths)[:-1])))
    conversion_ts = last_ts + rng.integers(0, 3 * 86_400_000_000, size=n_journeys)
    order = rng.permutation(n_touches)
    journey, ts, channel = journey[order], ts[order], channel[order]
    names = np.array([f"channel_{i:02d}" for i in range(n_channels)], dtype=object)

    def ids(values: np.ndarray) -> pl.Series:
        series = pl.Series("journey_id", values, dtype=pl.Int64)
        return series if int_ids else "J" + series.cast(pl.String).str.zfill(9)

    touches = pl.DataFrame(
        {
            "journey_id": ids(journey),
            "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "channel": pl.Series(names[channel], dtype=pl.String),
        }
    )
    journeys = pl.DataFrame(
        {
            "journey_id": ids(np.arange(n_journeys)),
            "conversions": converts.astype(np.float64),
            "value": np.where(converts, np.round(rng.lognormal(4.0, 1.0, n_journeys), 2), 0.0),
            "nulls": (~converts).astype(np.float64),
            "conversion_ts": pl.Series(conversion_ts)
            .cast(pl.Datetime("us", "UTC"))
            .scatter(np.flatnonzero(~converts), None),
        }
    )
    return touches, journeys


def generate_paths(n_paths: int, n_channels: int, max_length: int, seed: int) -> pl.DataFrame:
    """Distinct paths with Poisson conversions and nulls, as a path-level export."""
    rng = np.random.default_rng(seed)
    names = [f"channel_{i:02d}" for i in range(n_channels)]
    paths: dict[tuple[str, ...], None] = {}
    while len(paths) < n_paths:
        length = int(rng.integers(1, max_length + 1))
        paths[tuple(names[c] for c in rng.integers(0, n_channels, size=length))] = None
    conversions = rng.poisson(2.0, n_paths).astype(np.float64)
    return pl.DataFrame(
        {
            "path": [list(p) for p in paths],
            "conversions": conversions,
            "value": np.round(conversions * rng.lognormal(4.0, 0.5, n_paths), 2),
            "nulls": rng.poisson(20.0, n_paths).astype(np.float64),
        }
    )


# ------------------------------------------------------------------------------------- engine scripts


def run_ours(work: Path, models: tuple[str, ...]) -> pl.DataFrame:
    from assets.marketing.attribution_models import attribute_touches

    touches = pl.read_parquet(work / "touches.parquet")
    journeys = pl.read_parquet(work / "journeys.parquet")
    return attribute_touches(touches, journeys, models, half_life_days=HALF_LIFE_DAYS)


DUCKDB_HEURISTICS = """
WITH t AS (
    SELECT journey_id, channel, ts,
           row_number() OVER (PARTITION BY journey_id ORDER BY ts, file_row_number) AS pos,
           count(*) OVER (PARTITION BY journey_id) AS n,
           count(DISTINCT channel) OVER (PARTITION BY journey_id) AS d,
           count(*) OVER (PARTITION BY journey_id, channel) AS n_channel
    FROM read_parquet('{work}/touches.parquet', file_row_number = true)
), w AS (
    SELECT t.*, j.conversions AS conv, j.value AS val,
           pow(2, -(epoch(j.conversion_ts) - epoch(t.ts)) / ({half_life} * 86400)) AS decay
    FROM t JOIN read_parquet('{work}/journeys.parquet') AS j USING (journey_id)
), s AS (
    SELECT *,
           coalesce(decay / sum(decay) OVER (PARTITION BY journey_id), 0) AS decay_share,
           CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN pos = 1 OR pos = n THEN 0.4
                ELSE 0.2 / (n - 2) END AS position_share
    FROM w
)
SELECT channel, model, sum(share * conv) AS conversions, sum(share * val) AS value
FROM s, LATERAL (VALUES
    ('first_touch', CASE WHEN pos = 1 THEN 1.0 ELSE 0.0 END),
    ('last_touch', CASE WHEN pos = n THEN 1.0 ELSE 0.0 END),
    ('linear_touch', 1.0 / n),
    ('linear_channel', 1.0 / (d * n_channel)),
    ('time_decay', decay_share),
    ('position_based', position_share)
) AS m(model, share)
GROUP BY ALL
"""

DUCKDB_FIRST_LAST_LINEAR = """
WITH t AS (
    SELECT journey_id, channel,
           row_number() OVER (PARTITION BY journey_id ORDER BY ts, file_row_number) AS pos,
           count(*) OVER (PARTITION BY journey_id) AS n
    FROM read_parquet('{work}/touches.parquet', file_row_number = true)
)
SELECT channel, model, sum(share * j.conversions) AS conversions, sum(share * j.value) AS value
FROM t JOIN read_parquet('{work}/journeys.parquet') AS j USING (journey_id), LATERAL (VALUES
    ('first_touch', CASE WHEN pos = 1 THEN 1.0 ELSE 0.0 END),
    ('last_touch', CASE WHEN pos = n THEN 1.0 ELSE 0.0 END),
    ('linear_touch', 1.0 / n)
) AS m(model, share)
GROUP BY ALL
"""


def run_duckdb(work: Path, sql: str) -> pl.DataFrame:
    import duckdb

    relation = duckdb.sql(sql.format(work=work, half_life=HALF_LIFE_DAYS))
    assert relation is not None
    return relation.pl()


def run_polars(work: Path) -> pl.DataFrame:
    touches = pl.scan_parquet(work / "touches.parquet").with_row_index("rid")
    journeys = pl.scan_parquet(work / "journeys.parquet")
    journey = pl.col("journey_id")
    t = (
        touches.join(journeys, on="journey_id")
        .sort("journey_id", "ts", "rid")
        .with_columns(
            pos=pl.int_range(pl.len()).over(journey),
            n=pl.len().over(journey),
            d=pl.col("channel").n_unique().over(journey),
            n_channel=pl.len().over(journey, "channel"),
            decay=(
                2.0 ** (-(pl.col("conversion_ts") - pl.col("ts")).dt.total_seconds() / (HALF_LIFE_DAYS * 86_400))
            ).fill_null(0.0),
        )
        .with_columns(decay_share=(pl.col("decay") / pl.col("decay").sum().over(journey)).fill_nan(0.0))
    )
    return polars_credit(t)


def polars_credit(t: pl.LazyFrame) -> pl.DataFrame:
    """The six heuristic models' credit per channel from touches numbered within their journey: columns
    `pos`, `n` (touches), `d` (distinct channels), `n_channel` (touches of this channel), `decay_share`,
    `conversions`, `value`. Shared with bench/attribution.py's polars contender."""
    n, pos = pl.col("n"), pl.col("pos")
    shares = {
        "first_touch": (pos == 0).cast(pl.Float64),
        "last_touch": (pos == n - 1).cast(pl.Float64),
        "linear_touch": 1.0 / n,
        "linear_channel": 1.0 / (pl.col("d") * pl.col("n_channel")),
        "time_decay": pl.col("decay_share"),
        "position_based": pl.when(n == 1)
        .then(1.0)
        .when(n == 2)
        .then(0.5)
        .when((pos == 0) | (pos == n - 1))
        .then(0.4)
        .otherwise(0.2 / (n - 2)),
    }
    credit = t.group_by("channel").agg(
        *(
            expr
            for model, share in shares.items()
            for expr in (
                (share * pl.col("conversions")).sum().alias(f"{model}|conversions"),
                (share * pl.col("value")).sum().alias(f"{model}|value"),
            )
        )
    )
    long = credit.unpivot(index="channel").collect()
    return (
        long.with_columns(pl.col("variable").str.split_exact("|", 1).struct.rename_fields(["model", "kind"]))
        .unnest("variable")
        .pivot("kind", index=["channel", "model"], values="value")
    )


def run_pandas(work: Path) -> pl.DataFrame:
    import pandas as pd

    touches = pd.read_parquet(work / "touches.parquet")
    journeys = pd.read_parquet(work / "journeys.parquet")
    touches["rid"] = np.arange(len(touches))
    t = touches.merge(journeys, on="journey_id").sort_values(["journey_id", "ts", "rid"], kind="stable")
    return pandas_credit(t)


def pandas_credit(t: Any) -> pl.DataFrame:
    """The six heuristic models' credit per channel from a pandas frame of touches sorted within their journey
    (`journey_id`, `channel`, `ts`, `conversions`, `value`, `conversion_ts`). Shared with bench/attribution.py."""
    import pandas as pd

    by_journey = t.groupby("journey_id", sort=False)
    t["pos"] = by_journey.cumcount()
    t["n"] = by_journey["channel"].transform("size")
    t["d"] = by_journey["channel"].transform("nunique")
    t["n_channel"] = t.groupby(["journey_id", "channel"], sort=False)["channel"].transform("size")
    age = (t["conversion_ts"] - t["ts"]).dt.total_seconds() / (HALF_LIFE_DAYS * 86_400)
    t["decay"] = np.exp2(-age).fillna(0.0)
    t["decay_share"] = (t["decay"] / t.groupby("journey_id", sort=False)["decay"].transform("sum")).fillna(0.0)
    n, pos = t["n"], t["pos"]
    shares = {
        "first_touch": (pos == 0).astype(float),
        "last_touch": (pos == n - 1).astype(float),
        "linear_touch": 1.0 / n,
        "linear_channel": 1.0 / (t["d"] * t["n_channel"]),
        "time_decay": t["decay_share"],
        "position_based": np.select(
            [n == 1, n == 2, (pos == 0) | (pos == n - 1)], [1.0, 0.5, 0.4], 0.2 / (n - 2).clip(lower=1)
        ),
    }
    frames = []
    for model, share in shares.items():
        part = pd.DataFrame(
            {"channel": t["channel"], "conversions": share * t["conversions"], "value": share * t["value"]}
        )
        summed = part.groupby("channel", as_index=False).sum()
        summed["model"] = model
        frames.append(summed)
    return pl.from_pandas(pd.concat(frames, ignore_index=True))


def run_markov_shapley(work: Path) -> pl.DataFrame:
    from assets.marketing.attribution_models import attribute_paths

    paths = pl.read_parquet(work / "paths.parquet")
    return attribute_paths(paths, ("markov", "shapley"))


def run_engine(engine: str, work: Path) -> None:
    """Child process: time one engine, print one JSON line, save its result for the cross-check."""
    sys.path.insert(0, str(ROOT))
    # every engine's libraries are imported before the clock starts
    import duckdb  # noqa: F401
    import pandas  # noqa: F401

    from assets.marketing.attribution_models import HEURISTIC_MODELS, MODELS

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu_start = time.perf_counter(), time.process_time()
    if engine == "ours":
        result = run_ours(work, HEURISTIC_MODELS)
    elif engine == "ours_all_models":
        result = run_ours(work, MODELS)
    elif engine == "duckdb":
        result = run_duckdb(work, DUCKDB_HEURISTICS)
    elif engine == "duckdb_fll":
        result = run_duckdb(work, DUCKDB_FIRST_LAST_LINEAR)
    elif engine == "polars":
        result = run_polars(work)
    elif engine == "pandas":
        result = run_pandas(work)
    else:
        result = run_markov_shapley(work)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.select("model", "channel", "conversions", "value").write_parquet(work / f"result_{engine}.parquet")
    print(json.dumps({"engine": engine, "wall": wall, "cpu": cpu, "peak_mb": peak, "import_mb": rss_before}))


def check_agreement(work: Path, engines: list[str]) -> None:
    ours = pl.read_parquet(work / "result_ours.parquet") if "ours" in engines else None
    for engine in engines:
        if ours is None or engine in ("ours", "markov_shapley"):
            continue
        other = pl.read_parquet(work / f"result_{engine}.parquet")
        joined = other.join(ours, on=["model", "channel"], suffix="_ours")
        worst = joined.select(
            ((pl.col(c) - pl.col(f"{c}_ours")).abs() / pl.col(f"{c}_ours").abs().clip(1.0)).max()
            for c in ("conversions", "value")
        ).row(0)
        print(f"  {engine:16s} vs ours: {joined.height} model x channel rows, max relative difference {max(worst):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--touches", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=12)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--conversion-rate", type=float, default=0.3)
    parser.add_argument("--int-ids", action="store_true", help="integer journey ids (default: strings)")
    parser.add_argument("--paths", type=int, default=10_000, help="distinct paths for markov_shapley")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--workdir", type=Path, help="keep the Parquet files here (default: a temp dir)")
    parser.add_argument("--run", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_engine(args.run, args.workdir)
        return
    engines = args.engines.split(",")
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; choose from {ENGINES}")
    with tempfile.TemporaryDirectory(prefix="bench_attribution_") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        touches, journeys = generate(
            args.touches, args.channels, args.max_length, args.conversion_rate, args.seed, args.int_ids
        )
        touches.write_parquet(work / "touches.parquet")
        journeys.write_parquet(work / "journeys.parquet")
        generate_paths(args.paths, args.channels, args.max_length, args.seed).write_parquet(work / "paths.parquet")
        print(
            f"{touches.height:,} touches, {journeys.height:,} journeys ({args.conversion_rate:.0%} converting), "
            f"{args.channels} channels, {'integer' if args.int_ids else 'string'} journey ids; "
            f"{args.paths:,} paths; generated in {time.perf_counter() - started:.1f}s"
        )
        del touches, journeys
        walls: dict[str, list[float]] = {e: [] for e in engines}
        peaks: dict[str, list[float]] = {e: [] for e in engines}
        cpus: dict[str, list[float]] = {e: [] for e in engines}
        load_before = f"{os.getloadavg()[0]:.1f}"
        for _ in range(args.repeats):  # interleaved, so that background load hits every engine alike
            for engine in engines:
                command = [sys.executable, __file__, "--run", engine, "--workdir", str(work)]
                out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
                record = json.loads(out.strip().splitlines()[-1])
                walls[engine].append(record["wall"])
                peaks[engine].append(record["peak_mb"])
                cpus[engine].append(record["cpu"])
        medians = {engine: statistics.median(walls[engine]) for engine in engines}

        def ratio(engine: str, reference: str, inverse: bool = False) -> str:
            if reference not in medians:
                return ""
            value = medians[reference] / medians[engine] if inverse else medians[engine] / medians[reference]
            return f"{value:.2f}x"

        print(f"\nload average before/after: {load_before} / {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})")
        print(
            f"{'engine':16s} {'median s':>9s} {'min s':>7s} {'CPU s':>7s} {'peak RSS MB':>12s} "
            f"{'/ duckdb_fll':>13s} {'/ duckdb':>9s} {'pandas /':>9s}"
        )
        for engine in engines:
            print(
                f"{engine:16s} {medians[engine]:9.2f} {min(walls[engine]):7.2f} "
                f"{statistics.median(cpus[engine]):7.2f} {max(peaks[engine]):12.0f} "
                f"{ratio(engine, 'duckdb_fll'):>13s} {ratio(engine, 'duckdb'):>9s} {ratio(engine, 'pandas', True):>9s}"
            )
        print("\ncross-check of the heuristic credits:")
        check_agreement(work, engines)


if __name__ == "__main__":
    main()
