"""The whole marketing graph on ~10M touchpoints: our assets against one fused raw DuckDB script.

    .venv/bin/python bench/marketing_graph.py              # 1M people x 30 days (~10.5M touchpoints, ~13.7M rows)
    .venv/bin/python bench/marketing_graph.py --quick      # 100k people (~1M touchpoints)
    .venv/bin/python bench/marketing_graph.py --contenders ours --repeats 2

Data, generated once and cached (INTELLIGENCE_BENCH_CACHE, default <tmp>/intelligence-bench): the seeded marketing
world of April 2024 (landing files of the five sources for 30 days, with the generator's defects).

Contenders, each in its own fresh process, from the same landing files:

- `ours`: the marketing assets of the code location (its own resources, settings from the environment) run as
  jobs with `dg.execute_job` and the in-process executor on a temp instance, as the CLI runs them, in dependency
  order as `intelligence/demo.py` runs them (one single-run backfill per stage): sources
  (raw + cleansed, 30 days), identity (month), touchpoints (30 days), journeys + attribution + report (month).
  Attribution runs the six heuristic models, as the fused script does. Per-stage and per-step seconds are reported,
  so the slow stage is visible.
- `duckdb`: one fused DuckDB script doing the equivalent work in memory: read every CSV/JSONL file (all strings),
  type, validate and dedup each source, identity as connected components (iterative label propagation in SQL over
  cookie-customer, customer-email and cookie-handle links, shared cookies left out), touchpoints (ad click <-> web
  session by click id, social/e-mail click <-> session by person and medium within 30 minutes, then by campaign
  within 2 minutes), journeys with a 30-day lookback (conversions close a journey; open journeys kept as nulls) and
  the six heuristic models; it writes the credit table to Parquet. It keeps no quarantine, no per-rule counts, no
  intermediate tables, no report and no run history.

Target (issue 3): ours <= 2x the fused script. Results: tables, per-stage seconds, JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h

START = dt.date(2024, 4, 1)
DAYS = 30
PEOPLE, QUICK_PEOPLE = 1_000_000, 100_000
CONTENDERS = ("ours", "duckdb")
HEURISTICS = ("first_touch", "last_touch", "linear_touch", "linear_channel", "time_decay", "position_based")
LOOKBACK_DAYS = 30


# ------------------------------------------------------------------------------------ ours


def stage_job(index: int) -> Any:
    """Stage `index` of the demo's steps as a job of the code location's own assets and resources, in process.

    Built by name through `dg.build_reconstructable_job`, so `dg.execute_job` runs it the way the CLI and the
    daemon run a job: outputs go to the IO manager and are then dropped. `dg.materialize` (test tooling) keeps
    every step's output in memory until it returns: on this graph that was 13.8 GB peak instead of ~5 GB, and
    the paging made the sources stage 1.7x slower.
    """
    import dagster as dg

    from intelligence.definitions import defs
    from intelligence.demo import Window, demo_steps

    _, selection, _ = demo_steps(Window(START, DAYS))[index]
    name = f"bench_stage_{index}"
    job = dg.define_asset_job(name, selection=selection, executor_def=dg.in_process_executor)
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(name)


def run_ours(world: Path, out: Path) -> None:
    # The code location reads its settings from the environment, as in production: point it at `out`, with
    # the world's landing files (read only) as its landing zone.
    os.environ["INTELLIGENCE_HOME"] = str(out)
    os.environ["INTELLIGENCE_START_DATE"] = START.isoformat()
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "landing").exists():
        (out / "landing").symlink_to(world / "landing", target_is_directory=True)

    import dagster as dg
    import polars as pl

    from intelligence.demo import Window, demo_steps
    from intelligence.replay import QUIET

    steps = demo_steps(Window(START, DAYS))[:4]  # sources, identity, touchpoints, journeys + attribution + report
    run_config = {**QUIET, "ops": {"marketing__attribution": {"config": {"models": list(HEURISTICS)}}}}
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test(temp_dir=tmp) as instance:
        jobs = [dg.build_reconstructable_job("marketing_graph", "stage_job", (i,)) for i in range(len(steps))]
        for job in jobs:  # load the definitions before the clock starts, as the other contenders import theirs
            job.get_definition()

        def work() -> dict[str, Any]:
            stages: dict[str, float] = {}
            peaks: dict[str, float] = {}  # peak RSS so far, after each stage
            per_step: dict[str, float] = {}
            for job, (label, _, tags) in zip(jobs, steps, strict=True):
                started = time.perf_counter()
                config = run_config if "attribution" in label else QUIET
                with dg.execute_job(job, instance=instance, tags=tags, run_config=config) as result:
                    success, run_id = result.success, result.run_id
                stages[label] = round(time.perf_counter() - started, 2)
                peaks[label] = round(h.peak_rss_mb())
                if not success:
                    raise SystemExit(f"stage {label!r} failed")
                per_step.update(h.step_seconds(instance, run_id))
            return {"stages": stages, "steps": per_step, "peak_mb_after_stage": peaks}

        h.child_measure(work)
    credit = pl.read_parquet(out / "lake" / "marketing" / "attribution" / f"{START.isoformat()}.parquet")
    credit.select(pl.col("model").cast(pl.String), "channel", "conversions", "value").write_parquet(
        world.parent / "graph_result_ours.parquet"
    )


# ------------------------------------------------------------------------------------ fused DuckDB


def cleansed_sql(source: str, landing: Path) -> str:
    """One source's landing files (every day) -> typed, validated, deduplicated rows with their landing day."""
    from raw_cleansed import SPEC, duckdb_ts  # bench/raw_cleansed.py

    spec = SPEC[source]
    columns = spec["columns"]
    if source == "social":
        struct = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
        reader = (
            f"read_json('{landing}/social/*/*.jsonl', format = 'newline_delimited', columns = {struct}, "
            "ignore_errors = true, filename = true)"
        )
    else:
        reader = (
            f"read_csv('{landing}/{source}/*/*.csv', all_varchar = true, header = true, union_by_name = true, "
            "null_padding = true, ignore_errors = true, strict_mode = false, filename = true)"
        )
    raw = ", ".join(f"nullif(trim({c}), '') AS {c}" for c in columns)
    day = "regexp_extract(filename, '/(\\d{4}-\\d{2}-\\d{2})/', 1)::DATE AS landing_date"
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
            expr = {
                "snake": f"regexp_replace(lower({c}), '[\\s\\-]+', '_', 'g')",
                "upper": f"upper({c})",
                "lower": f"lower({c})",
            }[how]
            typed.append(f"{expr} AS {c}")
        elif c in ("campaign", "utm_source", "utm_medium", "utm_campaign", "email_hash"):
            typed.append(f"lower({c}) AS {c}")
        elif c == "social_handle":
            typed.append(f"lower(ltrim({c}, '@')) AS {c}")
        else:
            typed.append(c)
    ok = [f"{n} IS NOT NULL" for n in spec["required"]]
    ok += [f"({n} IS NOT NULL OR raw_{n} IS NULL)" for n in spec["types"]]
    ok += [
        f"({n} IS NULL OR {n} IN ({', '.join(repr(v) for v in values)}))" for n, (values, _) in spec["enums"].items()
    ]
    ok += [f"({n} IS NULL OR {n} {'>' if excl else '>='} {v})" for n, (v, excl) in spec["mins"].items()]
    ok += [f"({n} IS NULL OR regexp_full_match({n}, '{rx[1:-1]}'))" for n, rx in spec["regex"].items()]
    if source == "crm":
        ok += [
            "(record_type <> 'customer' OR (email_hash IS NOT NULL AND signup_ts IS NOT NULL))",
            "(record_type <> 'order' OR (order_id IS NOT NULL AND amount IS NOT NULL AND currency IS NOT NULL))",
        ]
        key = ", ".join(columns)
    else:
        key = ", ".join(spec["key"])
    if source == "social":
        ok += [
            "(cookie_id IS NOT NULL OR social_handle IS NOT NULL)",
            "(event_type <> 'click' OR cookie_id IS NOT NULL)",
        ]
    raw_types = ", ".join(f"{n} AS raw_{n}" for n in spec["types"])
    return f"""
        CREATE OR REPLACE TEMP TABLE {source} AS
        SELECT * EXCLUDE (rid, {", ".join(f"raw_{n}" for n in spec["types"])})
        FROM (SELECT {", ".join(typed)}, {raw_types}, landing_date, rid
              FROM (SELECT {raw}, {day}, row_number() OVER () AS rid FROM {reader}))
        WHERE {" AND ".join(ok)}
        QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY rid) = 1
    """


IDENTITY_SQL = """
CREATE OR REPLACE TEMP TABLE links AS
WITH cookie_customer AS (
    SELECT DISTINCT 'cookie:' || cookie_id AS a, 'customer:' || customer_id AS b
    FROM web WHERE customer_id IS NOT NULL
), shared AS (SELECT a FROM cookie_customer GROUP BY a HAVING count(*) > 1)
SELECT a, b FROM cookie_customer WHERE a NOT IN (SELECT a FROM shared)
UNION SELECT 'customer:' || customer_id, 'email:' || email_hash FROM crm
    WHERE record_type = 'customer' AND email_hash IS NOT NULL
UNION SELECT 'cookie:' || cookie_id, 'handle:' || social_handle FROM social
    WHERE cookie_id IS NOT NULL AND social_handle IS NOT NULL;

CREATE OR REPLACE TEMP TABLE nodes AS
SELECT identifier, row_number() OVER (ORDER BY rank, identifier) AS id
FROM (
    SELECT DISTINCT identifier,
           CASE split_part(identifier, ':', 1)
               WHEN 'customer' THEN 0 WHEN 'email' THEN 1 WHEN 'handle' THEN 2 ELSE 3
           END AS rank
    FROM (
        SELECT 'cookie:' || cookie_id AS identifier FROM ads
        UNION ALL SELECT 'cookie:' || cookie_id FROM social UNION ALL SELECT 'handle:' || social_handle FROM social
        UNION ALL SELECT 'cookie:' || cookie_id FROM web UNION ALL SELECT 'customer:' || customer_id FROM web
        UNION ALL SELECT 'email:' || email_hash FROM email UNION ALL SELECT 'customer:' || customer_id FROM crm
        UNION ALL SELECT a FROM links UNION ALL SELECT b FROM links
    ) WHERE identifier IS NOT NULL
);

CREATE OR REPLACE TEMP TABLE edges AS
WITH e AS (
    SELECT na.id AS u, nb.id AS v FROM links JOIN nodes AS na ON links.a = na.identifier
    JOIN nodes AS nb ON links.b = nb.identifier
)
SELECT u, v FROM e UNION SELECT v, u FROM e;

CREATE OR REPLACE TEMP TABLE labels AS SELECT DISTINCT u AS id, u AS label FROM edges;
"""

PROPAGATE_SQL = """
CREATE OR REPLACE TEMP TABLE next_labels AS
SELECT l.id, least(l.label, min(n.label)) AS label
FROM labels AS l JOIN edges AS e ON e.u = l.id JOIN labels AS n ON n.id = e.v
GROUP BY l.id, l.label;
CREATE OR REPLACE TEMP TABLE jumped AS  -- pointer jumping: take the label of your label
SELECT n.id, least(n.label, coalesce(j.label, n.label)) AS label
FROM next_labels AS n LEFT JOIN next_labels AS j ON j.id = n.label;
"""

TOUCHPOINTS_SQL = """
CREATE OR REPLACE TEMP TABLE person AS
SELECT n.identifier, coalesce(p.identifier, n.identifier) AS person_id
FROM nodes AS n LEFT JOIN labels AS l ON l.id = n.id LEFT JOIN nodes AS p ON p.id = l.label;

CREATE OR REPLACE TEMP TABLE raw_touches AS
SELECT 'ads:' || click_id AS event_key, ts, channel, 'ads' AS source, campaign, cost, false AS is_conversion,
       NULL::DOUBLE AS value, 'cookie:' || cookie_id AS identifier, landing_date FROM ads
UNION ALL
SELECT 'social:' || event_id, ts, 'social', 'social', campaign, 0.0, false, NULL,
       coalesce('cookie:' || cookie_id, 'handle:' || social_handle), landing_date
FROM social WHERE event_type IN ('engagement', 'click')
UNION ALL
SELECT 'email:' || message_id || ':' || event_type, ts, 'email', 'email', campaign, 0.0, false, NULL,
       'email:' || email_hash, landing_date
FROM email WHERE event_type IN ('open', 'click')
UNION ALL
SELECT 'crm:' || order_id, ts, NULL, 'crm', NULL, 0.0, true,
       round(amount * CASE currency WHEN 'USD' THEN 1.0 WHEN 'EUR' THEN 1.08 WHEN 'GBP' THEN 1.27 END, 2),
       'customer:' || customer_id, landing_date
FROM crm WHERE record_type = 'order';

CREATE OR REPLACE TEMP TABLE sessions AS
SELECT 'web:' || session_id AS event_key, ts,
       CASE WHEN utm_medium IS NULL AND utm_source IS NULL THEN 'direct'
            ELSE coalesce(map_extract_value(MAP {
                'cpc': 'paid_search', 'ppc': 'paid_search', 'paidsearch': 'paid_search', 'paid_search': 'paid_search',
                'sem': 'paid_search', 'display': 'display', 'banner': 'display', 'cpm': 'display', 'video': 'video',
                'social': 'social', 'paid_social': 'social', 'social-paid': 'social', 'email': 'email',
                'newsletter': 'email', 'organic': 'organic_search', 'referral': 'referral'}, utm_medium), 'other')
       END AS channel,
       'web' AS source, utm_campaign AS campaign, 0.0 AS cost, false AS is_conversion, NULL::DOUBLE AS value,
       coalesce('customer:' || customer_id, 'cookie:' || cookie_id) AS identifier, landing_date, click_id
FROM web;

-- sessions opened by an ad click are the click (source ads+web)
CREATE OR REPLACE TEMP TABLE ad_sessions AS
SELECT s.event_key, a.event_key AS click_key
FROM sessions AS s JOIN raw_touches AS a ON a.event_key = 'ads:' || s.click_id;

CREATE OR REPLACE TEMP TABLE with_person AS
SELECT t.*, coalesce(p.person_id, t.identifier) AS person_id
FROM (SELECT * EXCLUDE (click_id) FROM sessions WHERE event_key NOT IN (SELECT event_key FROM ad_sessions)
      UNION ALL BY NAME SELECT * FROM raw_touches) AS t
LEFT JOIN person AS p USING (identifier);

-- sessions opened by a social or e-mail click: same person and medium within 30 minutes, one session per click
CREATE OR REPLACE TEMP TABLE clicks AS
SELECT event_key AS click_key, person_id, channel, campaign, ts AS click_ts FROM with_person
WHERE (source = 'social' AND event_key IN (SELECT 'social:' || event_id FROM social WHERE event_type = 'click'))
   OR (source = 'email' AND event_key LIKE '%:click');
CREATE OR REPLACE TEMP TABLE candidates AS
SELECT event_key, person_id, channel, campaign, ts FROM with_person
WHERE source = 'web' AND channel IN ('social', 'email');
CREATE OR REPLACE TEMP TABLE by_person AS
SELECT * FROM (
    SELECT s.event_key, c.click_key, s.ts FROM candidates AS s ASOF JOIN clicks AS c
    ON s.person_id = c.person_id AND s.channel = c.channel AND s.ts >= c.click_ts
    WHERE s.ts - c.click_ts <= INTERVAL 30 MINUTES
) QUALIFY row_number() OVER (PARTITION BY click_key ORDER BY ts) = 1;
CREATE OR REPLACE TEMP TABLE by_campaign AS
SELECT * FROM (
    SELECT s.event_key, c.click_key, s.ts
    FROM (SELECT * FROM candidates WHERE event_key NOT IN (SELECT event_key FROM by_person)) AS s
    ASOF JOIN (SELECT * FROM clicks WHERE click_key NOT IN (SELECT click_key FROM by_person)) AS c
    ON s.channel = c.channel AND s.campaign = c.campaign AND s.ts >= c.click_ts
    WHERE s.ts - c.click_ts <= INTERVAL 2 MINUTES
) QUALIFY row_number() OVER (PARTITION BY click_key ORDER BY ts) = 1;

CREATE OR REPLACE TEMP TABLE touchpoints AS
SELECT * EXCLUDE (source),
       CASE WHEN event_key IN (SELECT click_key FROM ad_sessions) THEN 'ads+web'
            WHEN event_key IN (SELECT click_key FROM by_person UNION ALL SELECT click_key FROM by_campaign)
            THEN source || '+web' ELSE source END AS source
FROM with_person
WHERE event_key NOT IN (SELECT event_key FROM by_person UNION ALL SELECT event_key FROM by_campaign);
"""

JOURNEYS_SQL = """
CREATE OR REPLACE TEMP TABLE events AS
SELECT person_id, ts, channel, is_conversion, coalesce(value, 0.0) AS value, event_key,
       sum(is_conversion::INT) OVER (PARTITION BY person_id ORDER BY ts, is_conversion, event_key
                                     ROWS UNBOUNDED PRECEDING) - is_conversion::INT AS segment
FROM touchpoints WHERE ts < TIMESTAMPTZ '{end}';

CREATE OR REPLACE TEMP TABLE journeys AS
WITH conversions AS (
    SELECT person_id, segment, ts AS conversion_ts, value, event_key FROM events
    WHERE is_conversion AND ts >= TIMESTAMPTZ '{start}'
), converting AS (
    SELECT c.person_id || '|' || c.event_key AS journey_id, coalesce(t.ts, c.conversion_ts) AS ts,
           coalesce(t.channel, '(none)') AS channel, 1.0 AS conversions, c.value, c.conversion_ts,
           t.event_key AS touch_key
    FROM conversions AS c LEFT JOIN (SELECT * FROM events WHERE NOT is_conversion) AS t
    ON t.person_id = c.person_id AND t.segment = c.segment AND t.ts >= c.conversion_ts - INTERVAL {lookback} DAYS
), open_touches AS (
    SELECT *, max(ts) OVER (PARTITION BY person_id, segment) AS last FROM events AS e
    WHERE NOT is_conversion AND NOT EXISTS (
        SELECT 1 FROM events AS c WHERE c.is_conversion AND c.person_id = e.person_id AND c.segment = e.segment)
)
SELECT * FROM converting
UNION ALL
SELECT person_id || '|open|' || strftime(last, '%Y-%m-%dT%H:%M:%S.%f'), ts, channel, 0.0, 0.0, NULL, event_key
FROM open_touches WHERE last >= TIMESTAMPTZ '{start}' AND ts >= last - INTERVAL {lookback} DAYS;
"""

MODELS_SQL = """
COPY (
WITH t AS (
    SELECT journey_id, channel, ts, conversions AS conv, value AS val,
           row_number() OVER (PARTITION BY journey_id ORDER BY ts, touch_key) AS pos,
           count(*) OVER (PARTITION BY journey_id) AS n,
           count(DISTINCT channel) OVER (PARTITION BY journey_id) AS d,
           count(*) OVER (PARTITION BY journey_id, channel) AS n_channel,
           pow(2, -(epoch(conversion_ts) - epoch(ts)) / (7.0 * 86400)) AS decay
    FROM journeys WHERE conversions <> 0 OR value <> 0
), s AS (
    SELECT *, decay / sum(decay) OVER (PARTITION BY journey_id) AS decay_share,
           CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN pos = 1 OR pos = n THEN 0.4
                ELSE 0.2 / (n - 2) END AS position_share
    FROM t
)
SELECT model, channel, sum(share * conv) AS conversions, sum(share * val) AS value
FROM s, LATERAL (VALUES
    ('first_touch', CASE WHEN pos = 1 THEN 1.0 ELSE 0.0 END), ('last_touch', CASE WHEN pos = n THEN 1.0 ELSE 0.0 END),
    ('linear_touch', 1.0 / n), ('linear_channel', 1.0 / (d * n_channel)), ('time_decay', decay_share),
    ('position_based', position_share)
) AS m(model, share)
GROUP BY ALL ORDER BY ALL
) TO '{out}'
"""


def run_duckdb(world: Path, out: Path) -> None:
    import duckdb

    landing = world / "landing"
    end = dt.date(START.year + (START.month == 12), START.month % 12 + 1, 1)

    def work() -> dict[str, Any]:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        stages: dict[str, float] = {}

        def stage(name: str, sql: str) -> None:
            started = time.perf_counter()
            con.execute(sql)
            stages[name] = round(stages.get(name, 0.0) + time.perf_counter() - started, 2)

        for source in ("ads", "social", "crm", "web", "email"):
            stage("sources", cleansed_sql(source, landing))
        stage("identity", IDENTITY_SQL)
        rounds = 0
        while True:  # label propagation until no label changes
            rounds += 1
            stage("identity", PROPAGATE_SQL)
            changed = con.execute(
                "SELECT count(*) FROM jumped JOIN labels USING (id) WHERE jumped.label <> labels.label"
            ).fetchall()[0][0]
            stage("identity", "CREATE OR REPLACE TEMP TABLE labels AS SELECT * FROM jumped")
            if changed == 0:
                break
        stage("touchpoints", TOUCHPOINTS_SQL)
        stage("journeys", JOURNEYS_SQL.format(start=START.isoformat(), end=end.isoformat(), lookback=LOOKBACK_DAYS))
        stage("attribution", MODELS_SQL.format(out=out / "credit.parquet"))
        touchpoints = con.execute("SELECT count(*) FROM touchpoints").fetchall()[0][0]
        return {"stages": stages, "propagation_rounds": rounds, "touchpoints": touchpoints}

    h.child_measure(work)
    import polars as pl

    pl.read_parquet(out / "credit.parquet").write_parquet(world.parent / "graph_result_duckdb.parquet")


def run_child(contender: str, world: Path) -> None:
    h.sys_path()
    # every contender's libraries are imported before its clock starts
    import dagster  # noqa: F401
    import duckdb  # noqa: F401
    import polars  # noqa: F401

    with tempfile.TemporaryDirectory(prefix=f"bench_graph_{contender}_") as tmp:
        out = Path(tmp)
        os.environ["INTELLIGENCE_HOME"] = str(out)
        {"ours": run_ours, "duckdb": run_duckdb}[contender](world, out)


# ------------------------------------------------------------------------------------ main


def compare(world: Path) -> dict[str, float]:
    """Totals per model of both contenders (they differ a little: other parsers, other identity edge cases)."""
    import polars as pl

    files = {c: world.parent / f"graph_result_{c}.parquet" for c in CONTENDERS}
    if not all(f.exists() for f in files.values()):
        return {}
    totals = {
        c: pl.read_parquet(f).group_by("model").agg(pl.col("conversions", "value").sum()).sort("model")
        for c, f in files.items()
    }
    joined = totals["ours"].join(totals["duckdb"], on="model", suffix="_duckdb")
    print(joined)
    ours = pl.read_parquet(files["ours"])
    theirs = pl.read_parquet(files["duckdb"])
    both = ours.join(theirs, on=["model", "channel"], suffix="_duckdb")
    worst = both.select(
        ((pl.col("conversions") - pl.col("conversions_duckdb")).abs() / pl.col("conversions").abs().clip(1.0)).max()
    ).item()
    print(f"largest relative difference of a channel's conversions between the two: {worst:.2%}")
    return {"max_rel_diff_channel_conversions": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PEOPLE:,} people")
    parser.add_argument("--people", type=int, help=f"people in the world (default {PEOPLE:,}, ~10M touchpoints)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per contender (default 1)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--run", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_child(args.run, args.world)
        return
    contenders = h.chosen_contenders(parser, args.contenders, CONTENDERS)
    people = args.people or (QUICK_PEOPLE if args.quick else PEOPLE)
    world = h.world_home(START, DAYS, people)
    per_source = h.landing_rows(world)
    rows = sum(per_source.values())
    print(f"landing rows, {DAYS} days: {rows:,} ({', '.join(f'{s} {n:,}' for s, n in per_source.items())})")
    load_before = h.load()
    records = h.run_contenders(Path(__file__), contenders, args.repeats, ["--world", str(world)])
    summary = h.summarise(records)
    print(f"\nload before / after: {load_before} / {h.load()}")
    print(h.table(summary, ["duckdb"], rows=rows, rows_label="rows/s"))
    print("\nseconds per stage (median over runs):")
    for name in contenders:
        stages = records[name][0]["stages"]
        shown = ", ".join(
            f"{k.split(',')[0]} {sorted(r['stages'][k] for r in records[name])[len(records[name]) // 2]:.1f}"
            for k in stages
        )
        print(f"  {name:<8} {shown}")
    if records.get("ours"):
        peaks = records["ours"][0]["peak_mb_after_stage"]
        print(
            "  ours, peak RSS MB after each stage: "
            + ", ".join(f"{k.split(',')[0]} {v:,.0f}" for k, v in peaks.items())
        )
        steps = sorted(records["ours"][0]["steps"].items(), key=lambda kv: -kv[1])
        print(
            "  ours, slowest steps (first run): "
            + ", ".join(f"{k.removeprefix('marketing__')} {v:.1f}" for k, v in steps[:8])
        )
    if records.get("duckdb"):
        print(f"  duckdb: {records['duckdb'][0]['propagation_rounds']} label propagation rounds")
    verdicts = []
    if "ours" in summary and "duckdb" in summary:
        ratio = summary["ours"]["median_s"] / summary["duckdb"]["median_s"]
        verdicts.append(h.verdict("whole graph: ours <= 2x the fused DuckDB script", ratio <= 2, f"{ratio:.2f}x"))
        print("\n" + "\n".join(verdicts))
    print("\ncredit totals per model (ours vs the fused script):")
    agreement = compare(world)
    path = h.write_results(
        "marketing_graph",
        {
            "command": " ".join(sys.argv),
            "people": people,
            "landing_rows": per_source,
            "repeats": args.repeats,
            "load_before": load_before,
            "summary": summary,
            "runs": records,
            "agreement": agreement,
            "verdicts": verdicts,
        },
    )
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
