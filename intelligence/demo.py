"""The demo, headless: synthetic data through the whole platform, with a summary at the end.

    python -m intelligence.demo land    # land demo data if the landing zone has none (used by `make dev`)
    python -m intelligence.demo run     # the full headless demo (used by `make demo`)

`run` generates the window's files into a staging folder (the outside world), lets them arrive day
by day through the real landing and source-health sensors (social turns flaky mid-window, gets
rerouted through strict cleansing and later switches back), then materializes everything
downstream for the window in one go (identity, touchpoints, journeys, attribution, the monthly
reports, path attribution, module health) and prints what happened. This is conductor code: it may
import the definitions.

The demo window is the previous calendar month plus the current month up to yesterday (UTC), so the
monthly report has a complete month to show. `--start`/`--days` override it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl

from intelligence.replay import QUIET, replay, routing_history
from intelligence.settings import Settings, settings
from intelligence.synthetic.marketing import GeneratorConfig, generate_marketing

MARKETING_SOURCES = ("ads", "social", "crm", "web", "email")
DEMO_PEOPLE = 5000
DEMO_SEED = 7


@dataclass(frozen=True)
class Window:
    start: dt.date
    days: int

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def keys(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()


def default_window(today: dt.date | None = None) -> Window:
    today = today or dt.datetime.now(dt.UTC).date()
    first_of_month = today.replace(day=1)
    start = (first_of_month - dt.timedelta(days=1)).replace(day=1)
    return Window(start=start, days=(today - start).days)


def flaky_days(window: Window) -> tuple[int, ...]:
    """A stretch in the middle of the window where the flaky source (social) goes bad."""
    middle = window.days // 2
    return tuple(range(max(0, middle - 3), min(window.days, middle + 2)))


def has_marketing_data(config: Settings) -> bool:
    return all(
        (config.landing / source).is_dir() and any((config.landing / source).iterdir()) for source in MARKETING_SOURCES
    )


def land(window: Window, config: Settings, people: int = DEMO_PEOPLE, into: Path | None = None) -> bool:
    """Generate demo files (into the landing zone, or a staging folder) unless there are some already."""
    target = into or config.landing
    if has_marketing_data(config) or (into is not None and into.is_dir() and any(into.iterdir())):
        print(f"{target} or the landing zone already has marketing data; not generating")
        return False
    print(f"generating demo data for {window.start} … {window.end} ({people} people) in {target}")
    started = time.perf_counter()
    summary = generate_marketing(
        GeneratorConfig(
            start=window.start, days=window.days, people=people, seed=DEMO_SEED, flaky_days=flaky_days(window)
        ),
        landing_root=target,
        truth_root=config.truth,
        progress=True,
    )
    print(f"wrote {summary.files_written} files in {time.perf_counter() - started:.1f}s")
    return True


def months_in(window: Window) -> tuple[str, str]:
    """First and last monthly partition keys the window touches."""
    return window.start.replace(day=1).isoformat(), window.end.replace(day=1).isoformat()


def demo_steps(window: Window, sources: bool = True) -> list[tuple[str, dg.AssetSelection, dict[str, str]]]:
    """What `make demo` materializes in one go, in dependency order: one run per step."""

    def assets(*names: str) -> dg.AssetSelection:
        return dg.AssetSelection.assets(*[["marketing", n] for n in names]).required_multi_asset_neighbors()

    def span(first: str, last: str) -> dict[str, str]:
        return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}

    days, months = span(*window.keys), span(*months_in(window))
    source_assets = [f"{kind}_{s}" for s in MARKETING_SOURCES for kind in ("raw", "cleansed")]
    steps = [("sources: raw and cleansed, every day", assets(*source_assets), days)] if sources else []
    return [
        *steps,
        ("identity, every month", assets("identity"), months),
        ("touchpoints, every day", assets("touchpoints"), days),
        (
            "journeys, attribution and report, every month",
            assets("journeys", "attribution", "attribution_report"),
            months,
        ),
        ("path attribution", assets("path_attribution"), {}),
        ("module health", dg.AssetSelection.assets(["platform", "module_health"]).required_multi_asset_neighbors(), {}),
    ]


def materialize_demo(
    window: Window, instance: dg.DagsterInstance, sources: bool = True
) -> list[tuple[str, dg.ExecuteInProcessResult]]:
    """Materialize the whole marketing graph for the window, one single-run backfill per step."""
    from intelligence.definitions import defs  # the demo is a conductor: it may import the definitions
    from intelligence.resources import build_resources

    runnable = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    resources = build_resources()
    results = []
    for label, selection, tags in demo_steps(window, sources):
        started = time.perf_counter()
        result = dg.materialize(
            runnable,
            selection=selection,
            instance=instance,
            resources=resources,
            tags=tags,
            raise_on_error=False,
            run_config=QUIET,
        )
        print(f"  {label}: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - started:.1f}s")
        for failure in result.get_step_failure_events():
            error = failure.step_failure_data.error
            print(f"    {failure.step_key}: {error.message.strip() if error else 'failed'}")
        results.append((label, result))
        if not result.success:
            break
    return results


def land_path_export(config: Settings, month: dt.date) -> Path | None:
    """A pre-aggregated path export (the layout attribution tools produce), from the generator's truth."""
    target = config.landing / "paths" / f"paths_{month:%Y-%m}.csv"
    events_file = config.truth / "marketing" / "events.parquet"
    if target.exists() or not events_file.exists():
        return None
    events = pl.read_parquet(events_file).sort("person_id", "ts")
    touches = events.filter(pl.col("action").is_in(["click", "engagement", "open", "session"]))
    orders = events.filter(pl.col("is_conversion") & (pl.col("ts").dt.date().dt.truncate("1mo") == month))
    paths = (
        orders.select("person_id", pl.col("ts").alias("conversion_ts"), pl.col("conversion_value"))
        .join(touches.select("person_id", "ts", "channel"), on="person_id")
        .filter(
            (pl.col("ts") <= pl.col("conversion_ts")) & (pl.col("ts") > pl.col("conversion_ts") - pl.duration(days=30))
        )
        .sort("ts")
        .group_by("person_id", "conversion_ts", maintain_order=True)
        .agg(pl.col("channel").str.join(" > ").alias("path"), pl.col("conversion_value").first())
        .group_by("path")
        .agg(
            pl.len().alias("total_conversions"),
            pl.col("conversion_value").sum().round(2).alias("total_conversion_value"),
        )
        .with_columns(pl.lit(0).alias("total_null"))
        .sort("path")
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    paths.write_csv(target, separator=";")
    return target


def summary_frame(window: Window, config: Settings) -> pl.DataFrame:
    """Per source and day: rows landed, accepted and quarantined, read back from the lake."""
    rows = []
    for source in MARKETING_SOURCES:
        counts: dict[str, dict[dt.date, int]] = {}
        for label, folder in (
            ("landed", config.lake / "marketing" / f"raw_{source}"),
            ("accepted", config.lake / "marketing" / f"cleansed_{source}"),
            ("quarantined", config.quarantine / "marketing" / f"cleansed_{source}_quarantine"),
        ):
            files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
            per_day: dict[dt.date, int] = {}
            for file in files:
                day = dt.date.fromisoformat(file.stem)
                if window.start <= day <= window.end:
                    per_day[day] = pl.scan_parquet(file).select(pl.len()).collect().item()
            counts[label] = per_day
        for offset in range(window.days):
            day = window.start + dt.timedelta(days=offset)
            rows.append(
                {
                    "source": source,
                    "day": day,
                    "landed": counts["landed"].get(day, 0),
                    "accepted": counts["accepted"].get(day, 0),
                    "quarantined": counts["quarantined"].get(day, 0),
                }
            )
    return pl.DataFrame(rows)


def format_summary(frame: pl.DataFrame) -> str:
    """One line per day, one `landed/accepted/quarantined` cell per source, and a total line."""
    sources = list(dict.fromkeys(frame["source"].to_list()))
    width = 22
    header = "day         " + "".join(f"{s:>{width}}" for s in sources)
    lines = [header, "            " + "".join(f"{'landed/accepted/quar.':>{width}}" for _ in sources)]
    for day in sorted(set(frame["day"].to_list())):
        cells = []
        for source in sources:
            row = frame.filter((pl.col("source") == source) & (pl.col("day") == day)).row(0, named=True)
            cells.append(f"{row['landed']}/{row['accepted']}/{row['quarantined']}")
        lines.append(f"{day}  " + "".join(f"{c:>{width}}" for c in cells))
    totals = frame.group_by("source").agg(pl.col("landed", "accepted", "quarantined").sum())
    cells = []
    for source in sources:
        t = totals.filter(pl.col("source") == source).row(0, named=True)
        cells.append(f"{t['landed']}/{t['accepted']}/{t['quarantined']}")
    lines.append("total       " + "".join(f"{c:>{width}}" for c in cells))
    balanced = frame.filter(pl.col("landed") != pl.col("accepted") + pl.col("quarantined")).height == 0
    lines.append(f"rows landed = accepted + quarantined on every source and day: {'yes' if balanced else 'NO'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intelligence.demo", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["land", "run"])
    parser.add_argument("--start", type=dt.date.fromisoformat, help="first day of the demo window")
    parser.add_argument("--days", type=int, help="number of days in the demo window")
    parser.add_argument("--people", type=int, default=DEMO_PEOPLE)
    args = parser.parse_args(argv)
    window = default_window()
    if args.start or args.days:
        window = Window(start=args.start or window.start, days=args.days or window.days)
    config = settings()
    if window.start < config.start_date:
        parser.error(f"the window starts {window.start}, before INTELLIGENCE_START_DATE {config.start_date}")
    if args.command == "land":
        land(window, config, people=args.people)
        return 0
    staging = config.home / "incoming"
    land(window, config, people=args.people, into=staging)
    land_path_export(config, window.start.replace(day=1))
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        replayed = staging.is_dir() and any(staging.iterdir())
        if replayed:
            print(
                "files arrive day by day through the landing and source-health sensors; error rate of each "
                "source's latest delivered day (* = strict route):"
            )
            days = [window.start + dt.timedelta(days=i) for i in range(window.days)]
            log = replay(days, staging, config, instance)
            print(f"  {log.runs} sensor-requested runs, {log.failed_runs} failed")
        print(f"materializing everything downstream for {window.start} … {window.end} in one go")
        results = materialize_demo(window, instance, sources=not replayed)
    elapsed = time.perf_counter() - started
    success = all(r.success for _, r in results) and len(results) == len(demo_steps(window, not replayed))
    print(f"{'done' if success else 'FAILED'} in {elapsed:.1f}s")
    print(format_summary(summary_frame(window, config)))
    print("routing history:")
    print(routing_history(config))
    print(f"lake: {config.lake}   quarantine: {config.quarantine}   SQL: duckdb {config.warehouse}")
    for report in sorted(config.reports.glob("*/attribution.html")):
        print(f"report: {report}")
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())
