"""Our attribution step (the `marketing/attribution` asset) against raw DuckDB, polars and pandas scripts.

    .venv/bin/python bench/attribution.py                  # ~10M touchpoints (1M people x 30 days), 3 repeats
    .venv/bin/python bench/attribution.py --quick          # 100k people (~1M touchpoints), 1 repeat
    .venv/bin/python bench/attribution.py --contenders ours,duckdb --repeats 5

Data, generated once and cached (INTELLIGENCE_BENCH_CACHE, default <tmp>/intelligence-bench): the seeded marketing
world of `intelligence.synthetic.marketing` for April 2024; its true touchpoints (every event but signups and
orders, ~10M) and orders become a touchpoints table with the true person ids, and our journeys module's pure
function (`build_journeys`, 30-day lookback) turns it into the month's journeys, written (contract-checked) to
`lake/marketing/journeys/2024-04-01.parquet` exactly where the journeys asset writes it.

Contenders, each in its own fresh process reading that Parquet file, all computing the six heuristic models
(first_touch, last_touch, linear_touch, linear_channel, time_decay with a 7-day half-life, position_based 40/20/40):

- `ours`: `dg.materialize` of the `marketing/attribution` asset (with its quarantine and contract checks) on a
  temp instance with the real lake IO manager; the wall time is the whole `materialize` call, `step s` the step;
- `ours_all`: the same with all eight models (Markov and Shapley too), for information;
- `ours_kit`: the asset's pure function (`attribute_month`) without Dagster: scan Parquet, attribute, write Parquet;
- `duckdb`, `polars`, `pandas`: a script each; they skip journeys without conversions or value (they carry no
  credit), as our models do;
- `markov_shapley`: exact Markov + Shapley (`attribute_paths`) on 10,000 distinct paths over 12 channels.

Targets (issue 3): ours <= 1.2x DuckDB in time and memory; >= 8x faster than pandas; Markov + Shapley < 1 s.
Results: a table, a cross-check of the credits, and JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h

MONTH = dt.date(2024, 4, 1)
DAYS = 30
PEOPLE, QUICK_PEOPLE = 1_000_000, 100_000
HALF_LIFE_DAYS = 7.0
HEURISTICS = ("first_touch", "last_touch", "linear_touch", "linear_channel", "time_decay", "position_based")
CONTENDERS = ("ours", "ours_all", "ours_kit", "duckdb", "polars", "pandas", "markov_shapley")


def journeys_file(home: Path) -> Path:
    return home / "lake" / "marketing" / "journeys" / f"{MONTH.isoformat()}.parquet"


# ------------------------------------------------------------------------------------ data


def prepare(world: Path, people: int) -> Path:
    """A bench home whose lake holds the month's journeys, built by our journeys function from the world's truth."""
    home = h.CACHE / f"attribution_{MONTH.isoformat()}_{people}p" / "home"
    target = journeys_file(home)
    if target.exists():
        return home
    h.sys_path()
    import polars as pl

    from assets.marketing.journeys import CONTRACT, build_journeys
    from resources.lake import write_parquet_atomic

    print("building the month's journeys from the true touchpoints (once) ...", flush=True)
    events = pl.scan_parquet(world / "truth" / "marketing" / "events.parquet").filter(pl.col("action") != "signup")
    person = pl.lit("person:") + pl.col("person_id").cast(pl.String)
    touchpoints = events.select(
        (pl.lit("event:") + pl.col("event_id").cast(pl.String)).alias("event_key"),
        person.alias("person_id"),
        "ts",
        pl.when(pl.col("is_conversion")).then(None).otherwise(pl.col("channel")).alias("channel"),
        pl.col("campaign"),
        pl.lit(0.0).alias("cost"),
        "is_conversion",
        "conversion_value",
        person.alias("identifier"),
    )
    identity = pl.LazyFrame(schema={"identifier": pl.String, "person_id": pl.String, "month": pl.Date})
    journeys = build_journeys(touchpoints, identity, MONTH, lookback_days=30)
    validation = CONTRACT.validate(journeys)
    if validation.rejected.height:
        raise SystemExit(f"{validation.rejected.height} journey rows break the contract: {validation.counts}")
    write_parquet_atomic(validation.accepted, target)
    touches = events.filter(~pl.col("is_conversion")).select(pl.len()).collect().item()
    print(f"  {touches:,} true touchpoints -> {validation.accepted.height:,} journey touches", flush=True)
    return home


def write_paths(home: Path, n_paths: int, channels: int) -> Path:
    from attribution_models import generate_paths  # bench/attribution_models.py

    target = home.parent / f"paths_{n_paths}x{channels}.parquet"
    if not target.exists():
        generate_paths(n_paths, channels, max_length=20, seed=7).write_parquet(target)
    return target


# ------------------------------------------------------------------------------------ contenders


def run_ours(home: Path, models: tuple[str, ...]) -> Any:
    import tempfile

    import dagster as dg

    from intelligence.definitions import defs
    from intelligence.replay import QUIET
    from intelligence.resources import build_resources
    from intelligence.settings import Settings

    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    resources = build_resources(Settings(home=home, start_date=dt.date(2024, 1, 1)))
    selection = dg.AssetSelection.assets(["marketing", "attribution"]).required_multi_asset_neighbors()
    run_config = {**QUIET, "ops": {"marketing__attribution": {"config": {"models": list(models)}}}}
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test(temp_dir=tmp) as instance:

        def work() -> dict[str, Any]:
            result = dg.materialize(
                assets,
                selection=selection,
                instance=instance,
                resources=resources,
                partition_key=MONTH.isoformat(),
                run_config=run_config,
            )
            assert result.success
            return {"step_s": h.step_seconds(instance, result.run_id)}

        h.child_measure(work)
        import polars as pl

        out = pl.read_parquet(home / "lake" / "marketing" / "attribution" / f"{MONTH.isoformat()}.parquet")
        return out.select(pl.col("model").cast(pl.String), "channel", "conversions", "value")


def run_kit(home: Path) -> Any:
    import polars as pl

    from assets.marketing.attribution import AttributionConfig, attribute_month
    from resources.lake import write_parquet_atomic

    out: dict[str, Any] = {}

    def work() -> None:
        journeys = pl.scan_parquet(journeys_file(home)).filter(pl.col("month") == MONTH)  # as the asset reads it
        credit = attribute_month(journeys, AttributionConfig(models=list(HEURISTICS)))
        write_parquet_atomic(credit, home.parent / "kit_result.parquet")
        out["credit"] = credit

    h.child_measure(work)
    return out["credit"]


DUCKDB_SQL = """
WITH t AS (
    SELECT journey_id, channel, ts, conversions AS conv, value AS val, conversion_ts,
           row_number() OVER (PARTITION BY journey_id ORDER BY ts, touch_index) AS pos,
           count(*) OVER (PARTITION BY journey_id) AS n,
           count(DISTINCT channel) OVER (PARTITION BY journey_id) AS d,
           count(*) OVER (PARTITION BY journey_id, channel) AS n_channel,
           pow(2, -(epoch(conversion_ts) - epoch(ts)) / ({half_life} * 86400)) AS decay
    FROM read_parquet('{path}')
    WHERE month = DATE '{month}' AND (conversions <> 0 OR value <> 0)
), s AS (
    SELECT *,
           decay / sum(decay) OVER (PARTITION BY journey_id) AS decay_share,
           CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN pos = 1 OR pos = n THEN 0.4
                ELSE 0.2 / (n - 2) END AS position_share
    FROM t
)
SELECT model, channel, sum(share * conv) AS conversions, sum(share * val) AS value
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


def run_duckdb(home: Path) -> Any:
    import duckdb

    out: dict[str, Any] = {}

    def work() -> None:
        sql = DUCKDB_SQL.format(path=journeys_file(home), month=MONTH.isoformat(), half_life=HALF_LIFE_DAYS)
        out["credit"] = duckdb.sql(sql).pl()

    h.child_measure(work)
    return out["credit"]


def run_polars(home: Path) -> Any:
    import polars as pl

    out: dict[str, Any] = {}

    from attribution_models import polars_credit  # bench/attribution_models.py

    def work() -> None:
        journey = pl.col("journey_id")
        t = (
            pl.scan_parquet(journeys_file(home))
            .filter((pl.col("month") == MONTH) & ((pl.col("conversions") != 0) | (pl.col("value") != 0)))
            .select("journey_id", "touch_index", "ts", "channel", "conversions", "value", "conversion_ts")
            .sort("journey_id", "ts", "touch_index")
            .with_columns(
                pos=pl.int_range(pl.len()).over(journey),
                n=pl.len().over(journey),
                d=pl.col("channel").n_unique().over(journey),
                n_channel=pl.len().over(journey, "channel"),
                decay=2.0 ** (-(pl.col("conversion_ts") - pl.col("ts")).dt.total_seconds() / (HALF_LIFE_DAYS * 86_400)),
            )
            .with_columns(decay_share=pl.col("decay") / pl.col("decay").sum().over(journey))
        )
        out["credit"] = polars_credit(t)

    h.child_measure(work)
    return out["credit"]


def run_pandas(home: Path) -> Any:
    import pandas as pd
    from attribution_models import pandas_credit  # bench/attribution_models.py

    out: dict[str, Any] = {}

    def work() -> None:
        columns = ["journey_id", "touch_index", "ts", "channel", "conversions", "value", "conversion_ts", "month"]
        t = pd.read_parquet(journeys_file(home), columns=columns)
        t = t[(t["month"] == MONTH) & ((t["conversions"] != 0) | (t["value"] != 0))]
        t = t.sort_values(["journey_id", "ts", "touch_index"], kind="stable")
        out["credit"] = pandas_credit(t)

    h.child_measure(work)
    return out["credit"]


def run_markov_shapley(paths_file: Path) -> Any:
    import polars as pl

    from assets.marketing.attribution_models import attribute_paths

    paths = pl.read_parquet(paths_file)
    attribute_paths(paths.head(100), ("markov", "shapley"))  # warm up (numpy/BLAS first call)
    out: dict[str, Any] = {}

    def work() -> dict[str, Any]:
        out["credit"] = attribute_paths(paths, ("markov", "shapley"))
        return {"paths": paths.height, "channels": paths["path"].explode().n_unique()}

    h.child_measure(work)
    return out["credit"]


def run_child(contender: str, home: Path, paths_file: Path) -> None:
    h.sys_path()
    os.environ["INTELLIGENCE_HOME"] = str(home)
    # every contender's libraries are imported before its clock starts
    import dagster  # noqa: F401
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import polars as pl

    from assets.marketing.attribution_models import MODELS

    if contender == "ours":
        credit = run_ours(home, HEURISTICS)
    elif contender == "ours_all":
        credit = run_ours(home, MODELS)
    elif contender == "ours_kit":
        credit = run_kit(home)
    elif contender == "duckdb":
        credit = run_duckdb(home)
    elif contender == "polars":
        credit = run_polars(home)
    elif contender == "pandas":
        credit = run_pandas(home)
    else:
        credit = run_markov_shapley(paths_file)
    credit.select(pl.col("model").cast(pl.String), "channel", "conversions", "value").write_parquet(
        home.parent / f"result_{contender}.parquet"
    )


# ------------------------------------------------------------------------------------ report


def cross_check(home: Path, contenders: list[str]) -> dict[str, float]:
    import polars as pl

    reference = "ours_kit" if "ours_kit" in contenders else "ours" if "ours" in contenders else None
    if reference is None:
        return {}
    ref = pl.read_parquet(home.parent / f"result_{reference}.parquet")
    worst: dict[str, float] = {}
    for contender in contenders:
        if contender in (reference, "markov_shapley"):
            continue
        other = pl.read_parquet(home.parent / f"result_{contender}.parquet").filter(pl.col("model").is_in(HEURISTICS))
        joined = other.join(ref, on=["model", "channel"], suffix="_ref")
        if joined.height != other.height:
            raise SystemExit(f"{contender}: {other.height - joined.height} model x channel rows not in {reference}")
        diff = joined.select(
            ((pl.col(c) - pl.col(f"{c}_ref")).abs() / pl.col(f"{c}_ref").abs().clip(1.0)).max()
            for c in ("conversions", "value")
        ).row(0)
        worst[contender] = max(diff)
        print(f"  {contender:<16} vs {reference}: {joined.height} model x channel rows, max rel. diff {max(diff):.1e}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PEOPLE:,} people, 1 repeat")
    parser.add_argument("--people", type=int, help=f"people in the world (default {PEOPLE:,}, ~10M touchpoints)")
    parser.add_argument("--repeats", type=int, help="runs per contender (default 3; 1 with --quick)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=12)
    parser.add_argument("--run", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--paths-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_child(args.run, args.home, args.paths_file)
        return
    contenders = h.chosen_contenders(parser, args.contenders, CONTENDERS)
    people = args.people or (QUICK_PEOPLE if args.quick else PEOPLE)
    repeats = args.repeats or (1 if args.quick else 3)
    world = h.world_home(MONTH, DAYS, people)
    home = prepare(world, people)
    paths_file = write_paths(home, args.paths, args.channels)
    import polars as pl

    rows = pl.scan_parquet(journeys_file(home)).select(pl.len()).collect().item()
    print(f"journeys of {MONTH:%Y-%m}: {rows:,} touch rows; load before: {h.load()}", flush=True)
    load_before = h.load()
    records = h.run_contenders(
        Path(__file__),
        contenders,
        repeats,
        ["--home", str(home), "--paths-file", str(paths_file)],
        once=("ours_all",),
    )
    summary = h.summarise(records)
    print(f"\nload before / after: {load_before} / {h.load()}")
    print(h.table(summary, ["duckdb", "pandas"], rows=rows, rows_label="touches/s"))
    for name in ("ours", "ours_all"):
        if records.get(name):
            steps = [r["step_s"].get("marketing__attribution", float("nan")) for r in records[name]]
            print(f"  {name}: the attribution step itself took {', '.join(f'{s:.2f}' for s in steps)} s")
    print("\ncross-check of the heuristic credits:")
    agreement = cross_check(home, contenders)
    verdicts = []
    if "ours" in summary and "duckdb" in summary:
        t = summary["ours"]["median_s"] / summary["duckdb"]["median_s"]
        m = summary["ours"]["peak_mb"] / summary["duckdb"]["peak_mb"]
        w = summary["ours"]["work_mb"] / max(summary["duckdb"]["work_mb"], 1.0)
        verdicts.append(h.verdict("ours <= 1.2x DuckDB time", t <= 1.2, f"{t:.2f}x"))
        verdicts.append(
            h.verdict(
                "ours <= 1.2x DuckDB memory (peak RSS)", m <= 1.2, f"{m:.2f}x (working set beyond imports {w:.2f}x)"
            )
        )
    if "ours" in summary and "pandas" in summary:
        s = summary["pandas"]["median_s"] / summary["ours"]["median_s"]
        verdicts.append(h.verdict(">= 8x faster than pandas (whole materialize call)", s >= 8, f"{s:.1f}x"))
        # The step alone (STEP_START to STEP_SUCCESS: load, models, contract, checks, writes), without the run's
        # creation and bookkeeping around it, which a pandas script does not have either.
        step = statistics.median(r["step_s"].get("marketing__attribution", float("nan")) for r in records["ours"])
        s = summary["pandas"]["median_s"] / step
        verdicts.append(h.verdict(">= 8x faster than pandas (the step alone)", s >= 8, f"{s:.1f}x"))
    if "markov_shapley" in summary:
        t = summary["markov_shapley"]["median_s"]
        verdicts.append(
            h.verdict(
                f"exact Markov + Shapley, {args.paths:,} paths x {args.channels} channels < 1 s", t < 1, f"{t:.3f} s"
            )
        )
    print("\ntargets:")
    print("\n".join(verdicts))
    path = h.write_results(
        "attribution",
        {
            "command": " ".join(sys.argv),
            "people": people,
            "journey_touch_rows": rows,
            "repeats": repeats,
            "load_before": load_before,
            "summary": summary,
            "runs": records,
            "agreement_max_rel_diff": agreement,
            "verdicts": verdicts,
        },
    )
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
