"""Sensors: the platform reacting to new data and to its own checks (the feedback loop).

- `landing_sensor`: new files in the landing zone → runs of that source's day partition, exactly
  once per set of files; rejected landings are reported (tick log + observations on landing/rejected).
- `source_health_sensor`: reads each source's error-rate checks from the instance and reroutes a
  misbehaving source through strict cleansing (and back), recording why, re-running what is affected
  and alerting the operator.
- `reroute_followup_sensor`: once a reroute run has re-cleansed past days, refreshes the monthly
  journeys, attribution and report of the months concerned.
- `run_failure_alert_sensor`: a failed run raises one alert per failing job/selection (repeats counted).
- `automation_sensor`: declarative automation (eager downstream modules), RUNNING from the start.
"""

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence

import dagster as dg
import polars as pl

from intelligence.landing_watch import FolderChange, LandingWatcher, Rejection
from intelligence.routing import (
    STANDARD,
    STRICT,
    FeedbackPolicy,
    current_route,
    decide,
    error_rates,
    history_markdown,
    load_routes,
    record_switch,
    route_on,
)
from intelligence.sources import LANDING_DIGESTS
from resources.alerts import AlertSink
from resources.landing_zone import LandingZone
from resources.warehouse import Warehouse

MARKETING_SOURCES = ("ads", "social", "crm", "web", "email")
ROUTING_KEY = dg.AssetKey(["marketing", "source_routing"])
REJECTED_KEY = dg.AssetKey(["landing", "rejected"])
REROUTE_TAG = "intelligence/reroute"
MONTHS_TAG = "intelligence/affected_months"
MONTHLY_CHAIN = ("journeys", "attribution", "attribution_report")


def _keys(*names: str) -> list[dg.AssetKey]:
    """Marketing asset keys with their quarantine companions (produced together, run together)."""
    keys = []
    for name in names:
        keys.append(dg.AssetKey(["marketing", name]))
        if name.startswith(("cleansed_", "strict_cleansed_")) or name in (
            "touchpoints",
            "journeys",
            "attribution",
            "path_attribution",
        ):
            keys.append(dg.AssetKey(["marketing", f"{name}_quarantine"]))
    return keys


def _source_keys(source: str, route: str) -> list[dg.AssetKey]:
    names = [f"raw_{source}", f"cleansed_{source}"]
    if route == STRICT:
        names.append(f"strict_cleansed_{source}")
    return _keys(*names)


def _rejection_events(rejections: Iterable[Rejection]) -> list[dg.AssetObservation]:
    return [
        dg.AssetObservation(asset_key=REJECTED_KEY, metadata={"path": r.path, "reason": r.reason}) for r in rejections
    ]


# -- new data --------------------------------------------------------------------------------------


@dg.sensor(
    name="landing_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New landing files → runs of the source's day partitions (exactly once per set of files).",
    asset_selection=dg.AssetSelection.groups("marketing_sources", "marketing", "telemetry"),
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone, warehouse: Warehouse) -> dg.SensorResult:
    watcher = LandingWatcher(landing.root_path, MARKETING_SOURCES)
    cursor = json.loads(context.cursor) if context.cursor else None
    scan = watcher.scan(cursor)
    read = already_read(context.instance, [c for c in scan.changes if c.kind == "daily"])
    daily = [c for c in scan.changes if c.kind == "daily" and c.folder not in read]
    routes = load_routes(warehouse) if daily else None
    requests = daily_requests(daily, routes)
    requests += [
        dg.RunRequest(
            run_key=c.run_key, asset_selection=_keys("path_attribution"), tags={"intelligence/landing": c.folder}
        )
        for c in scan.changes
        if c.kind == "paths"
    ]
    for rejection in scan.rejections:
        context.log.warning(f"rejected landing {rejection.path}: {rejection.reason}")
    context.log.info(
        f"{scan.folders_seen} folders watched, {scan.folders_listed} listed, {len(scan.changes)} changed "
        f"({len(scan.changes) - len(daily) - sum(c.kind != 'daily' for c in scan.changes)} already read), "
        f"{len(requests)} runs requested, {len(scan.rejections)} rejected{' (more next tick)' if scan.more else ''}"
    )
    return dg.SensorResult(
        run_requests=requests,
        cursor=json.dumps(scan.cursor, separators=(",", ":")),
        asset_events=_rejection_events(scan.rejections),
    )


def already_read(instance: dg.DagsterInstance, changes: Sequence[FolderChange]) -> set[str]:
    """The folders whose exact set of files the raw asset's latest run of that day already read (e.g.
    after the sensor's cursor was lost or reset): no second run for the same files.

    One paged query per source, not one per folder: a lost cursor over thousands of folders must
    still fit in a tick (about 10-40 ms per query on SQLite would be minutes)."""
    wanted: dict[str, dict[str, FolderChange]] = defaultdict(dict)
    for change in changes:
        assert change.day is not None
        wanted[change.source][change.day.isoformat()] = change
    read: set[str] = set()
    for source, by_day in wanted.items():
        records_filter = dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(["marketing", f"raw_{source}"]), asset_partitions=list(by_day)
        )
        latest: dict[str, dg.AssetMaterialization | None] = {}
        cursor = None
        while len(latest) < len(by_day):
            result = instance.fetch_materializations(records_filter, limit=1000, cursor=cursor)
            for record in result.records:  # newest first: the first record of a day is its latest
                if record.partition_key is not None:
                    latest.setdefault(record.partition_key, record.asset_materialization)
            if not result.has_more:
                break
            cursor = result.cursor
        for day, event in latest.items():
            digests = event.metadata.get(LANDING_DIGESTS) if event else None
            value = getattr(digests, "value", digests)
            if isinstance(value, dict) and value.get(day) == by_day[day].digest:
                read.add(by_day[day].folder)
    return read


def daily_requests(changes: Sequence[FolderChange], routes: pl.DataFrame | None) -> list[dg.RunRequest]:
    """One run per source, route and run of consecutive days: a backlog of a hundred days is a few
    single-run backfills, not a hundred runs. The run key is derived from the folders' file sets."""
    groups: dict[tuple[str, str], list[FolderChange]] = defaultdict(list)
    for change in changes:
        assert change.day is not None
        route = route_on(routes, change.source, change.day) if routes is not None else STANDARD
        groups[(change.source, route)].append(change)
    requests = []
    for (source, route), group in sorted(groups.items()):
        group.sort(key=lambda c: c.day or dt.date.min)
        spans: list[list[FolderChange]] = []
        for change in group:
            if spans and change.day == spans[-1][-1].day + dt.timedelta(days=1):  # type: ignore[operator]
                spans[-1].append(change)
            else:
                spans.append([change])
        for span in spans:
            first, last = span[0].day.isoformat(), span[-1].day.isoformat()  # type: ignore[union-attr]
            digest = hashlib.sha256("".join(f"{c.folder}={c.digest};" for c in span).encode()).hexdigest()[:20]
            range_tags = (
                {}
                if first == last
                else {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
            )
            requests.append(
                dg.RunRequest(
                    run_key=f"landing:{source}:{first}..{last}:{route}:{digest}",
                    partition_key=first if first == last else None,
                    asset_selection=_source_keys(source, route),
                    tags={**range_tags, "intelligence/landing": f"{source} {first}..{last}"},
                )
            )
    return requests


# -- the feedback loop ------------------------------------------------------------------------------


def _month_keys(days: Iterable[dt.date]) -> list[str]:
    return sorted({d.replace(day=1).isoformat() for d in days})


@dg.sensor(
    name="source_health_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Reads each source's error-rate checks; k of the last n partitions above the threshold → strict "
        "cleansing (recorded, re-run, alerted); m clean partitions on strict → back to standard."
    ),
    asset_selection=dg.AssetSelection.groups("marketing_sources", "marketing"),
)
def source_health_sensor(
    context: dg.SensorEvaluationContext, warehouse: Warehouse, alerts: AlertSink
) -> dg.SensorResult | dg.SkipReason:
    policy = FeedbackPolicy.from_env()
    routes = load_routes(warehouse)
    requests: list[dg.RunRequest] = []
    events: list[dg.AssetMaterialization] = []
    now = dt.datetime.now(dt.UTC)
    for source in MARKETING_SOURCES:
        route, since = current_route(routes, source)
        standard = error_rates(context.instance, dg.AssetKey(["marketing", f"cleansed_{source}"]))
        strict = error_rates(context.instance, dg.AssetKey(["marketing", f"strict_cleansed_{source}"]))
        switch = decide(source, route, standard, strict, since, policy)
        if switch is None:
            continue
        record_switch(warehouse, switch, now)
        routes = load_routes(warehouse)
        message = f"{source} switched to the {switch.route} route from {switch.effective_from}: {switch.reason}"
        context.log.warning(message)
        alert = alerts.raise_alert(
            key=f"reroute:{source}:{switch.route}",
            kind="reroute",
            severity="warning" if switch.route == STRICT else "info",
            message=message,
            details={"source": source, "route": switch.route, "evidence": switch.evidence},
            log=context.log,
        )
        if switch.route == STANDARD:
            alerts.resolve(f"reroute:{source}:{STRICT}")
        events.append(
            dg.AssetMaterialization(
                asset_key=ROUTING_KEY,
                description=message,
                metadata={
                    "source": source,
                    "route": switch.route,
                    "effective_from": switch.effective_from.isoformat(),
                    "reason": switch.reason,
                    "evidence": dg.MetadataValue.json(switch.evidence),
                    "alert": alert.alert_id,
                    "history": dg.MetadataValue.md(history_markdown(routes)),
                },
            )
        )
        if switch.affected:
            first, last = switch.affected[0].isoformat(), switch.affected[-1].isoformat()
            requests.append(
                dg.RunRequest(
                    run_key=f"reroute:{source}:{switch.route}:{switch.effective_from}:{now.isoformat()}",
                    asset_selection=_keys(f"strict_cleansed_{source}", "touchpoints"),
                    tags={
                        "dagster/asset_partition_range_start": first,
                        "dagster/asset_partition_range_end": last,
                        REROUTE_TAG: source,
                        MONTHS_TAG: ",".join(_month_keys(switch.affected)),
                    },
                )
            )
    if not events:
        return dg.SkipReason("every source is on the right route")
    return dg.SensorResult(run_requests=requests, asset_events=events)


@dg.run_status_sensor(
    name="reroute_followup_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
    request_jobs=[],
    minimum_interval_seconds=30,
    description="After a reroute re-cleansed past days: refresh those months' journeys, attribution and report.",
)
def reroute_followup_sensor(context: dg.RunStatusSensorContext) -> dg.SensorResult | dg.SkipReason:
    run = context.dagster_run
    source = run.tags.get(REROUTE_TAG)
    if not source:
        return dg.SkipReason("not a reroute run")
    months = [m for m in run.tags.get(MONTHS_TAG, "").split(",") if m]
    requests = [
        dg.RunRequest(
            run_key=f"reroute-followup:{run.run_id}:{month}",
            partition_key=month,
            asset_selection=_keys(*MONTHLY_CHAIN),
            tags={"intelligence/followup_of": run.run_id},
        )
        for month in months
    ]
    return dg.SensorResult(run_requests=requests)


# -- failures -----------------------------------------------------------------------------------------


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
    description="A failed run raises an operator alert; repeats (retries) of the same failure are counted.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertSink) -> None:
    run = context.dagster_run
    selection = sorted(k.to_user_string() for k in (run.asset_selection or []))
    if not selection:
        # A whole-job run (no asset selection): name it by its failed steps, else every failing asset
        # of that job would count as a repeat of the first one's alert.
        selection = sorted({e.step_key for e in context.get_step_failure_events() if e.step_key})
    subject = ",".join(selection) if selection else run.job_name
    partition = run.tags.get("dagster/partition") or run.tags.get("dagster/asset_partition_range_start") or ""
    error = context.failure_event.message if context.failure_event else "run failed"
    alert = alerts.raise_alert(
        key=f"run_failure:{subject}",
        kind="run_failure",
        message=f"run {run.run_id[:8]} of {subject} {partition} failed: {error}"[:2000],
        details={"run_id": run.run_id, "job": run.job_name, "partition": partition, "assets": selection},
        log=context.log,
    )
    context.log.info(f"alert {alert.alert_id} ({'new' if alert.new else f'repeat #{alert.occurrences}'})")


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Declarative automation of the event-driven modules (eager downstream of new data).",
)

SENSORS = [landing_sensor, source_health_sensor, reroute_followup_sensor, run_failure_alert_sensor, automation_sensor]
