"""Replaying days of arrivals through the real sensors, headless (used by `make demo` and tests).

Each simulated day, that day's files move from a staging folder (the outside world) into the
landing zone; then the landing sensor ticks and its run requests run, then the source-health
sensor ticks and its reroute runs run. Runs execute in process against the real instance, exactly
as the daemon would launch them, so the check history, the routing table and the alerts are real.
Like the demo, this is conductor code: it imports the definitions and the sensors.
"""

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import polars as pl

from intelligence.landing_watch import SETTLE_SECONDS
from intelligence.routing import error_rates, load_routes
from intelligence.settings import Settings

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class ReplayLog:
    runs: int = 0
    failed_runs: int = 0
    switches: list[str] = field(default_factory=list)


def arrival_days(truth: Path) -> dict[str, dt.date]:
    """When each staged file arrives: the generator's `arrives_at` (late files come days later)."""
    files = truth / "marketing" / "files.parquet"
    if not files.exists():
        return {}
    frame = pl.read_parquet(files, columns=["file", "arrives_at"]).drop_nulls()
    return {row[0]: row[1].date() for row in frame.iter_rows()}


def arrive(staging: Path, landing: Path, day: dt.date, arrivals: dict[str, dt.date] | None = None) -> int:
    """Move the files arriving on `day` from staging into the landing zone (atomically, never overwriting).

    A file arrives on the day `arrivals` says (late files arrive after their folder's day), else on
    its folder's day.
    """
    moved = 0
    arrivals = arrivals or {}
    for file in sorted(staging.glob("*/*/*")):
        relative = file.relative_to(staging).as_posix()
        folder_day = dt.date.fromisoformat(file.parent.name) if len(file.parent.name) == 10 else day
        if arrivals.get(relative, folder_day) != day:
            continue
        target = landing / relative
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.arriving")
        shutil.copyfile(file, tmp)
        # Arrived a little while ago: past the sensor's settle time, as if the tick came later.
        past = time.time() - SETTLE_SECONDS - 1
        os.utime(tmp, (past, past))
        os.replace(tmp, target)
        moved += 1
    return moved


def execute(
    request: dg.RunRequest,
    assets: list[dg.AssetsDefinition],
    resources: dict[str, object],
    instance: dg.DagsterInstance,
) -> dg.ExecuteInProcessResult:
    """Run one sensor request in process, as the daemon would launch it."""
    return dg.materialize(
        assets,
        selection=dg.AssetSelection.assets(*(request.asset_selection or [])),
        partition_key=request.partition_key,
        tags=dict(request.tags),
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
    )


def merged(requests: list[dg.RunRequest]) -> list[dg.RunRequest]:
    """Requests for the same partitions as one run (the daemon would run them side by side)."""
    groups: dict[tuple[object, ...], list[dg.RunRequest]] = {}
    for request in requests:
        span = (
            request.partition_key,
            request.tags.get("dagster/asset_partition_range_start"),
            request.tags.get("dagster/asset_partition_range_end"),
        )
        groups.setdefault(span, []).append(request)
    out = []
    for group in groups.values():
        keys = list(dict.fromkeys(k for r in group for k in (r.asset_selection or [])))
        tags = {k: v for r in group for k, v in r.tags.items()}
        out.append(
            dg.RunRequest(
                run_key="+".join(r.run_key or "" for r in group),
                partition_key=group[0].partition_key,
                asset_selection=keys,
                tags=tags,
            )
        )
    return out


def replay(
    days: list[dt.date],
    staging: Path,
    config: Settings,
    instance: dg.DagsterInstance,
    say: Callable[[str], None] = print,
) -> ReplayLog:
    """Land `days` one by one through the landing and source-health sensors."""
    from intelligence.definitions import defs
    from intelligence.resources import build_resources
    from intelligence.sensors import MARKETING_SOURCES, landing_sensor, source_health_sensor

    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    resources = build_resources(config)
    log = ReplayLog()
    cursor: str | None = None
    launched: set[str] = set()  # run keys: like the daemon, launch each one once
    warehouse = resources["warehouse"]
    arrivals = arrival_days(config.truth)
    last = max(arrivals.values(), default=days[-1]) if days else None
    while last is not None and days[-1] < last:  # late files of the last days arrive after the window
        days = [*days, days[-1] + dt.timedelta(days=1)]
    for day in days:
        moved = arrive(staging, config.landing, day, arrivals)
        tick = landing_sensor(
            dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=resources)
        )
        fresh = (tick.run_requests or []) if isinstance(tick, dg.SensorResult) else []
        cursor = tick.cursor if isinstance(tick, dg.SensorResult) else cursor
        for request in merged([r for r in fresh if r.run_key not in launched]):
            launched.update(r for r in (request.run_key or "").split("+") if r)
            result = execute(request, assets, resources, instance)
            log.runs += 1
            log.failed_runs += int(not result.success)
        health = source_health_sensor(dg.build_sensor_context(instance=instance, definitions=defs, resources=resources))
        notes = []
        if isinstance(health, dg.SensorResult):
            for event in health.asset_events or []:
                description = getattr(event, "description", None)
                if description:
                    log.switches.append(f"{day}: {description}")
                    notes.append(description)
            for request in health.run_requests or []:
                if request.run_key in launched:
                    continue
                launched.add(request.run_key or "")
                result = execute(request, assets, resources, instance)
                log.runs += 1
                log.failed_runs += int(not result.success)
        routes = load_routes(warehouse)
        cells = []
        for source in MARKETING_SOURCES:
            # most exports arrive the morning after their day: show the latest day each source has delivered
            rates = error_rates(instance, dg.AssetKey(["marketing", f"cleansed_{source}"]))
            latest = max(rates) if rates else day
            rate = rates.get(latest)
            on = routes.filter((pl.col("source") == source) & (pl.col("effective_from") <= latest)).sort("changed_at")
            route = on["route"][-1] if on.height else "standard"
            mark = "*" if route == "strict" else " "
            cells.append(f"{source} {'   -  ' if rate is None else f'{rate:6.1%}'}{mark}")
        say(f"  {day}  {moved:3d} files  " + "  ".join(cells) + ("   ← " + "; ".join(notes) if notes else ""))
    return log


def routing_history(config: Settings) -> str:
    from intelligence.resources import build_resources

    routes = load_routes(build_resources(config)["warehouse"])
    if routes.height == 0:
        return "  (no source was rerouted)"
    lines = []
    for row in routes.sort("changed_at").iter_rows(named=True):
        evidence = json.loads(row["evidence"] or "{}")
        rates = evidence.get("standard_error_rates") or evidence.get("strict_error_rates") or {}
        shown = ", ".join(f"{d}: {r:.1%}" for d, r in rates.items())
        lines.append(
            f"  {row['source']:<7} → {row['route']:<8} from {row['effective_from']}  {row['reason']}  [{shown}]"
        )
    return "\n".join(lines)
