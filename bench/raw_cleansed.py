"""Rows/s for raw -> cleansed of one large day of the five marketing sources: our assets against raw scripts.

    .venv/bin/python bench/raw_cleansed.py                 # one day of ~1.5M landing rows (3M people), 3 repeats
    .venv/bin/python bench/raw_cleansed.py --quick         # 300k people (~150k rows), 1 repeat
    .venv/bin/python bench/raw_cleansed.py --contenders ours,polars --repeats 5

Data, generated once and cached (INTELLIGENCE_BENCH_CACHE, default <tmp>/intelligence-bench): two days of the seeded
marketing world from 2024-04-01; the benchmark reads the second day (2024-04-02: no initial CRM export, so a usual
mix), about 0.5 landing rows per person across ads, social (4 JSONL files), crm, web (2 files) and email, with the
generator's defects (duplicates, nulls, ragged rows, bad timestamps and numbers, truncated JSON, extra columns,
mixed timestamp formats).

Contenders, each in its own fresh process, all five sources, every one writing accepted and rejected rows to Parquet:

- `ours`: `dg.materialize` of `raw_<source>` and `cleansed_<source>` (+ quarantine, contract checks) for the day,
  on a temp instance with the real lake IO manager; per-step seconds come from the event log;
- `ours_kit`: the same kit functions without Dagster: `read_landing_days` (robust parser) + `run_cleansing`
  (duplicates, the module's cleansing, the contract) + Parquet writes of accepted rows and quarantine;
- `polars`, `duckdb`, `pandas`: a script each: read all-strings (CSV/JSONL; ragged rows truncated or padded,
  unreadable JSON lines skipped), cast (timestamps in the generator's five formats, numbers), normalise enums,
  validate (required columns, types, enums, minimums, hash format, the cross-column rules) and dedup by key,
  then write accepted and rejected rows. They keep no line numbers, reasons or per-rule counts, and silently lose
  lines their reader cannot split: our step keeps every row with a reason (rows in = accepted + quarantined).

Results: a table with rows/s, per-source seconds of ours, and JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h

START = dt.date(2024, 4, 1)
DAY = dt.date(2024, 4, 2)
PEOPLE, QUICK_PEOPLE = 3_000_000, 300_000
SOURCES = ("ads", "social", "crm", "web", "email")
CONTENDERS = ("ours", "ours_kit", "polars", "duckdb", "pandas")
SHA256 = r"^[0-9a-f]{64}$"

# What the raw scripts check, per source: the landing columns and their types, required columns, enums (with the
# normalisation our cleansing does), minimums (value, exclusive), regexes, the key to dedup on (None: whole row).
SPEC: dict[str, dict[str, Any]] = {
    "ads": {
        "types": {"cost": "float", "ts": "ts"},
        "columns": ["click_id", "cookie_id", "campaign", "channel", "cost", "ts"],
        "required": ["click_id", "cookie_id", "campaign", "channel", "cost", "ts"],
        "enums": {"channel": (["paid_search", "display", "video"], "snake")},
        "mins": {"cost": (0.0, False)},
        "regex": {},
        "key": ["click_id"],
    },
    "social": {
        "types": {"ts": "ts"},
        "columns": ["event_id", "cookie_id", "social_handle", "platform", "campaign", "event_type", "ts"],
        "required": ["event_id", "platform", "campaign", "event_type", "ts"],
        "enums": {
            "platform": (["facebook", "instagram", "linkedin", "tiktok", "x"], "lower"),
            "event_type": (["impression", "engagement", "click"], "lower"),
        },
        "mins": {},
        "regex": {},
        "key": ["event_id"],
    },
    "crm": {
        "types": {"signup_ts": "ts", "amount": "float", "ts": "ts"},
        "columns": ["record_type", "customer_id", "email_hash", "signup_ts", "order_id", "amount", "currency", "ts"],
        "required": ["record_type", "customer_id", "ts"],
        "enums": {"record_type": (["customer", "order"], "lower"), "currency": (["USD", "EUR", "GBP"], "upper")},
        "mins": {"amount": (0.0, True)},
        "regex": {"email_hash": SHA256},
        "key": None,
    },
    "web": {
        "types": {"ts": "ts", "goal_completions": "int"},
        "columns": [
            "session_id",
            "cookie_id",
            "customer_id",
            "click_id",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "landing_page",
            "ts",
            "goal_completions",
        ],
        "required": ["session_id", "cookie_id", "landing_page", "ts", "goal_completions"],
        "enums": {},
        "mins": {"goal_completions": (0, False)},
        "regex": {},
        "key": ["session_id"],
    },
    "email": {
        "types": {"ts": "ts"},
        "columns": ["message_id", "email_hash", "campaign", "event_type", "ts"],
        "required": ["message_id", "email_hash", "campaign", "event_type", "ts"],
        "enums": {"event_type": (["send", "open", "click"], "lower")},
        "mins": {},
        "regex": {"email_hash": SHA256},
        "key": ["message_id", "event_type", "ts"],
    },
}


def day_files(world: Path, source: str) -> list[Path]:
    folder = world / "landing" / source / DAY.isoformat()
    return sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".jsonl"))


# ------------------------------------------------------------------------------------ ours


def run_ours(world: Path, out: Path) -> None:
    import dagster as dg

    from intelligence.definitions import defs
    from intelligence.replay import QUIET
    from intelligence.resources import build_resources
    from intelligence.settings import Settings
    from resources.landing_zone import LandingZone

    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    resources = {
        **build_resources(Settings(home=out, start_date=START)),
        "landing": LandingZone(root=str(world / "landing")),
    }
    keys = [["marketing", f"{kind}_{s}"] for s in SOURCES for kind in ("raw", "cleansed")]
    selection = dg.AssetSelection.assets(*keys).required_multi_asset_neighbors()
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test(temp_dir=tmp) as instance:

        def work() -> dict[str, Any]:
            run = dg.materialize(
                assets,
                selection=selection,
                instance=instance,
                resources=resources,
                partition_key=DAY.isoformat(),
                run_config=QUIET,
            )
            assert run.success

            return {"steps": h.step_seconds(instance, run.run_id)}

        h.child_measure(work)


def run_kit(world: Path, out: Path) -> None:
    import time

    from assets.marketing import ads, crm, email, social, web
    from intelligence.cleansing import run_cleansing
    from intelligence.sources import read_landing_days
    from resources.lake import write_parquet_atomic
    from resources.landing_zone import LandingZone

    landing = LandingZone(root=str(world / "landing"))
    specs = [m.SOURCE for m in (ads, social, crm, web, email)]

    def work() -> dict[str, Any]:
        seconds: dict[str, float] = {}
        counts: dict[str, list[int]] = {}
        for spec in specs:
            started = time.perf_counter()
            raw, _, _ = read_landing_days(landing, spec.name, [DAY], spec.landing_columns)
            parsed = time.perf_counter()
            result = run_cleansing(raw, list(spec.landing_columns), spec.contract, spec.cleanse)
            write_parquet_atomic(result.accepted, out / f"{spec.name}_accepted.parquet")
            write_parquet_atomic(result.quarantine, out / f"{spec.name}_quarantine.parquet")
            seconds[f"{spec.name}_parse"] = round(parsed - started, 3)
            seconds[f"{spec.name}_cleanse"] = round(time.perf_counter() - parsed, 3)
            counts[spec.name] = [result.rows_in, result.accepted.height, result.quarantine.height]
        return {"steps": seconds, "counts": counts}

    h.child_measure(work)


# ------------------------------------------------------------------------------------ polars


def polars_ts(name: str) -> Any:
    import polars as pl

    s = pl.col(name).str.strip_chars()
    digits = s.cast(pl.Int64, strict=False)
    return pl.coalesce(
        s.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False, time_zone="UTC", time_unit="us"),
        s.str.to_datetime("%Y-%m-%dT%H:%M:%S%#z", strict=False, time_zone="UTC", time_unit="us"),
        s.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us").dt.replace_time_zone("UTC"),
        pl.when(digits >= 10**11)
        .then(digits * 1_000)
        .otherwise(digits * 1_000_000)
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC"),
    ).alias(name)


def polars_source(files: list[Path], spec: dict[str, Any]) -> tuple[Any, Any]:
    import polars as pl

    columns = spec["columns"]
    frames = []
    for path in files:
        if path.stat().st_size == 0:
            continue
        if path.suffix == ".jsonl":
            # polars' NDJSON reader aborts on a truncated line: keep the lines that look like whole objects
            lines = pl.read_csv(path, has_header=False, separator="\x1f", quote_char=None, new_columns=["line"])
            whole = lines.filter(pl.col("line").str.starts_with("{") & pl.col("line").str.ends_with("}"))
            data = io.BytesIO(whole["line"].str.join("\n").item().encode())
            frame = pl.read_ndjson(data, schema={c: pl.String for c in columns}, ignore_errors=True)
        else:
            frame = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True, raise_if_empty=False)
        frames.append(
            frame.select(pl.col(c) if c in frame.columns else pl.lit(None, pl.String).alias(c) for c in columns)
        )
    raw = pl.concat(frames).with_columns(pl.col(columns).str.strip_chars().replace("", None))
    raw = raw.with_columns(pl.col(n).alias(f"_raw_{n}") for n in spec["types"])
    casts = []
    for name, kind in spec["types"].items():
        if kind == "ts":
            casts.append(polars_ts(name))
        else:
            casts.append(pl.col(name).cast(pl.Float64 if kind == "float" else pl.Int64, strict=False))
    for name, (_, how) in spec["enums"].items():
        low = pl.col(name).str.to_lowercase()
        casts.append(
            (
                low.str.replace_all(r"[\s\-]+", "_")
                if how == "snake"
                else pl.col(name).str.to_uppercase()
                if how == "upper"
                else low
            ).alias(name)
        )
    typed = raw.with_columns(casts)
    ok = [pl.col(n).is_not_null() for n in spec["required"]]
    ok += [pl.col(n).is_not_null() | pl.col(f"_raw_{n}").is_null() for n in spec["types"]]
    ok += [pl.col(n).is_null() | pl.col(n).is_in(values) for n, (values, _) in spec["enums"].items()]
    ok += [
        pl.col(n).is_null() | ((pl.col(n) > v) if excl else (pl.col(n) >= v)) for n, (v, excl) in spec["mins"].items()
    ]
    ok += [pl.col(n).is_null() | pl.col(n).str.contains(rx) for n, rx in spec["regex"].items()]
    if spec["key"] is None:  # crm: record completeness instead of a key
        is_customer, is_order = pl.col("record_type") == "customer", pl.col("record_type") == "order"
        ok += [
            ~is_customer | (pl.col("email_hash").is_not_null() & pl.col("signup_ts").is_not_null()),
            ~is_order
            | (pl.col("order_id").is_not_null() & pl.col("amount").is_not_null() & pl.col("currency").is_not_null()),
        ]
        first = pl.struct(columns).is_first_distinct()
    else:
        first = pl.struct(spec["key"]).is_first_distinct()
    valid = pl.all_horizontal(ok) & first
    checked = typed.with_columns(valid.alias("_valid"))
    accepted = checked.filter(pl.col("_valid")).select(columns)
    rejected = checked.filter(~pl.col("_valid")).select(columns)
    return accepted, rejected


def run_polars(world: Path, out: Path) -> None:
    def work() -> dict[str, Any]:
        counts = {}
        for source in SOURCES:
            accepted, rejected = polars_source(day_files(world, source), SPEC[source])
            accepted.write_parquet(out / f"{source}_accepted.parquet")
            rejected.write_parquet(out / f"{source}_rejected.parquet")
            counts[source] = [accepted.height + rejected.height, accepted.height, rejected.height]
        return {"counts": counts}

    h.child_measure(work)


# ------------------------------------------------------------------------------------ duckdb


def duckdb_ts(name: str) -> str:
    c = f"trim({name})"
    return (
        f"coalesce(try_cast({c} AS TIMESTAMPTZ), CASE WHEN regexp_full_match({c}, '\\d{{12,13}}') "
        f"THEN make_timestamp(try_cast({c} AS BIGINT) * 1000)::TIMESTAMPTZ WHEN regexp_full_match({c}, '\\d{{9,10}}') "
        f"THEN to_timestamp(try_cast({c} AS BIGINT)) END)"
    )


def duckdb_source(con: Any, files: list[Path], spec: dict[str, Any], out: Path, source: str) -> list[int]:
    columns = spec["columns"]
    listed = "[" + ", ".join(f"'{p}'" for p in files if p.stat().st_size > 0) + "]"
    if files[0].suffix == ".jsonl":
        struct = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
        reader = f"read_json({listed}, format = 'newline_delimited', columns = {struct}, ignore_errors = true)"
    else:
        reader = (
            f"read_csv({listed}, all_varchar = true, header = true, union_by_name = true, null_padding = true, "
            "ignore_errors = true, strict_mode = false)"
        )
    raw = ", ".join(f"nullif(trim({c}), '') AS {c}" for c in columns)
    typed = []
    for c in columns:
        kind = spec["types"].get(c)
        if kind == "ts":
            typed.append(f"{duckdb_ts(c)} AS {c}")
        elif kind == "float":
            typed.append(f"try_cast({c} AS DOUBLE) AS {c}")
        elif kind == "int":
            typed.append(f"try_cast({c} AS BIGINT) AS {c}")
        elif c in spec["enums"]:
            how = spec["enums"][c][1]
            expr = (
                f"regexp_replace(lower({c}), '[\\s\\-]+', '_', 'g')"
                if how == "snake"
                else f"upper({c})"
                if how == "upper"
                else f"lower({c})"
            )
            typed.append(f"{expr} AS {c}")
        else:
            typed.append(c)
    ok = [f"{n} IS NOT NULL" for n in spec["required"]]
    ok += [f"({n} IS NOT NULL OR raw_{n} IS NULL)" for n in spec["types"]]
    ok += [
        f"({n} IS NULL OR {n} IN ({', '.join(repr(v) for v in values)}))" for n, (values, _) in spec["enums"].items()
    ]
    ok += [f"({n} IS NULL OR {n} {'>' if excl else '>='} {v})" for n, (v, excl) in spec["mins"].items()]
    ok += [f"({n} IS NULL OR regexp_full_match({n}, '{rx[1:-1]}'))" for n, rx in spec["regex"].items()]
    if spec["key"] is None:
        ok += [
            "(record_type <> 'customer' OR (email_hash IS NOT NULL AND signup_ts IS NOT NULL))",
            "(record_type <> 'order' OR (order_id IS NOT NULL AND amount IS NOT NULL AND currency IS NOT NULL))",
        ]
        key = ", ".join(columns)
    else:
        key = ", ".join(spec["key"])
    raw_types = ", ".join(f"{n} AS raw_{n}" for n in spec["types"])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE checked AS
        SELECT *, ({" AND ".join(ok)}) AND row_number() OVER (PARTITION BY {key} ORDER BY rid) = 1 AS valid
        FROM (
            SELECT {", ".join(typed)}, {raw_types}, rid
            FROM (SELECT {raw}, row_number() OVER () AS rid FROM {reader})
        )
    """)
    cols = ", ".join(columns)
    con.execute(f"COPY (SELECT {cols} FROM checked WHERE valid ORDER BY rid) TO '{out}/{source}_accepted.parquet'")
    con.execute(
        f"COPY (SELECT {cols} FROM checked WHERE NOT coalesce(valid, false)) TO '{out}/{source}_rejected.parquet'"
    )
    return list(
        con.execute(
            "SELECT count(*), count(*) FILTER (valid), count(*) FILTER (NOT coalesce(valid, false)) FROM checked"
        ).fetchone()
    )


def run_duckdb(world: Path, out: Path) -> None:
    import duckdb

    def work() -> dict[str, Any]:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        counts = {s: duckdb_source(con, day_files(world, s), SPEC[s], out, s) for s in SOURCES}
        return {"counts": counts}

    h.child_measure(work)


# ------------------------------------------------------------------------------------ pandas


def pandas_source(files: list[Path], spec: dict[str, Any]) -> tuple[Any, Any]:
    import json

    import numpy as np
    import pandas as pd

    columns = spec["columns"]
    frames = []
    for path in files:
        if path.stat().st_size == 0:
            continue
        if path.suffix == ".jsonl":
            records = []
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        continue
            frame = pd.DataFrame.from_records(records)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip", encoding_errors="replace")
        frames.append(frame.reindex(columns=columns))
    df = pd.concat(frames, ignore_index=True)
    for c in columns:
        df[c] = df[c].astype("string").str.strip().replace("", pd.NA)
    raw = df[list(spec["types"])].copy()
    for name, kind in spec["types"].items():
        if kind == "ts":
            text = df[name]
            iso = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
            numeric = pd.to_numeric(text.where(text.str.fullmatch(r"\d{9,13}", na=False)), errors="coerce")
            digits = numeric.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
            epoch = pd.to_datetime(np.where(digits >= 1e11, digits * 1_000, digits * 1_000_000), unit="us", utc=True)
            df[name] = iso.fillna(pd.Series(epoch, index=df.index))
        else:
            df[name] = pd.to_numeric(df[name], errors="coerce")
    for name, (_, how) in spec["enums"].items():
        low = df[name].str.lower()
        df[name] = (
            low.str.replace(r"[\s\-]+", "_", regex=True)
            if how == "snake"
            else df[name].str.upper()
            if how == "upper"
            else low
        )

    def known(condition: Any) -> Any:  # pandas' nullable booleans: unknown is not valid
        return condition.fillna(False).astype(bool)

    ok = pd.Series(True, index=df.index)
    for n in spec["required"]:
        ok &= known(df[n].notna())
    for n in spec["types"]:
        ok &= known(df[n].notna() | raw[n].isna())
    for n, (values, _) in spec["enums"].items():
        ok &= known(df[n].isna() | df[n].isin(values))
    for n, (v, excl) in spec["mins"].items():
        ok &= known(df[n].isna() | ((df[n] > v) if excl else (df[n] >= v)))
    for n, rx in spec["regex"].items():
        ok &= known(df[n].isna() | df[n].str.fullmatch(rx[1:-1], na=False))
    if spec["key"] is None:
        ok &= known((df["record_type"] != "customer") | (df["email_hash"].notna() & df["signup_ts"].notna()))
        ok &= known(
            (df["record_type"] != "order") | (df["order_id"].notna() & df["amount"].notna() & df["currency"].notna())
        )
        first = ~df.duplicated(subset=columns, keep="first")
    else:
        first = ~df.duplicated(subset=spec["key"], keep="first")
    valid = (ok & first).fillna(False).astype(bool)
    return df[valid], df[~valid]


def run_pandas(world: Path, out: Path) -> None:
    def work() -> dict[str, Any]:
        counts = {}
        for source in SOURCES:
            accepted, rejected = pandas_source(day_files(world, source), SPEC[source])
            accepted.to_parquet(out / f"{source}_accepted.parquet")
            rejected.astype("string").to_parquet(out / f"{source}_rejected.parquet")
            counts[source] = [len(accepted) + len(rejected), len(accepted), len(rejected)]
        return {"counts": counts}

    h.child_measure(work)


def run_child(contender: str, world: Path) -> None:
    h.sys_path()
    # every contender's libraries are imported before its clock starts
    import dagster  # noqa: F401
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import polars  # noqa: F401

    with tempfile.TemporaryDirectory(prefix=f"bench_raw_cleansed_{contender}_") as tmp:
        out = Path(tmp)
        os.environ["INTELLIGENCE_HOME"] = str(out)
        {"ours": run_ours, "ours_kit": run_kit, "polars": run_polars, "duckdb": run_duckdb, "pandas": run_pandas}[
            contender
        ](world, out)


# ------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PEOPLE:,} people, 1 repeat")
    parser.add_argument("--people", type=int, help=f"people in the world (default {PEOPLE:,})")
    parser.add_argument("--repeats", type=int, help="runs per contender (default 3; 1 with --quick)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--run", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_child(args.run, args.world)
        return
    contenders = h.chosen_contenders(parser, args.contenders, CONTENDERS)
    people = args.people or (QUICK_PEOPLE if args.quick else PEOPLE)
    repeats = args.repeats or (1 if args.quick else 3)
    world = h.world_home(START, 2, people)
    per_source = h.landing_rows(world, [DAY])
    rows = sum(per_source.values())
    print(f"landing rows of {DAY}: {rows:,} ({', '.join(f'{s} {n:,}' for s, n in per_source.items())})", flush=True)
    load_before = h.load()
    records = h.run_contenders(Path(__file__), contenders, repeats, ["--world", str(world)])
    summary = h.summarise(records)
    print(f"\nload before / after: {load_before} / {h.load()}")
    print(h.table(summary, ["polars", "duckdb", "pandas"], rows=rows))
    for name in ("ours", "ours_kit"):
        if records.get(name):
            steps = records[name][0]["steps"]
            shown = ", ".join(f"{k.removeprefix('marketing__')} {v:.2f}" for k, v in steps.items())
            print(f"  {name} seconds per step (first run): {shown}")
    print("\nrows in / accepted / rejected per source:")
    for name in contenders:
        counts = records[name][0].get("counts")
        if counts:
            print(f"  {name:<10}" + "  ".join(f"{s} {c[0]:,}/{c[1]:,}/{c[2]:,}" for s, c in counts.items()))
    path = h.write_results(
        "raw_cleansed",
        {
            "command": " ".join(sys.argv),
            "people": people,
            "day": DAY.isoformat(),
            "landing_rows": per_source,
            "repeats": repeats,
            "load_before": load_before,
            "summary": summary,
            "rows_per_second": {name: rows / s["median_s"] for name, s in summary.items()},
            "runs": records,
        },
    )
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
