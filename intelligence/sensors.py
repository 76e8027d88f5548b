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
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

import dagster as dg
import polars as pl

from assets.telemetry.points import LandingFile, index_path, read_index, read_landing_files, type_records
from intelligence.landing_watch import FolderChange, LandingWatcher, Rejection, dump_cursor, load_cursor, relist
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
from intelligence.settings import settings
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
def landing_sensor(
    context: dg.SensorEvaluationContext, landing: LandingZone, warehouse: Warehouse
) -> dg.SensorResult | dg.SkipReason:
    watcher = LandingWatcher(landing.root_path, MARKETING_SOURCES)
    scan = watcher.scan(load_cursor(context.cursor))
    read = already_read(context.instance, [c for c in scan.changes if c.kind == "daily"])
    daily = [c for c in scan.changes if c.kind == "daily" and c.folder not in read]
    busy = in_flight(context.instance, daily, context.log)
    for change in busy:  # look again once that run is over: it may read these very files (then: already read)
        relist(scan.cursor, change.folder)
        context.log.info(f"{change.folder}: a run of that day is queued or running; waiting for it")
    daily = [c for c in daily if c not in busy]
    routes = load_routes(warehouse) if daily else None
    requests = daily_requests(daily, routes)
    requests += [
        dg.RunRequest(
            run_key=c.run_key, asset_selection=_keys("path_attribution"), tags={"intelligence/landing": c.folder}
        )
        for c in scan.changes
        if c.kind == "paths"
    ]
    requests += telemetry_requests([c for c in scan.changes if c.kind == "telemetry"], landing, context)
    for rejection in scan.rejections:
        context.log.warning(f"rejected landing {rejection.path}: {rejection.reason}")
    context.log.info(
        f"{scan.folders_seen} folders watched, {scan.folders_listed} listed, {len(scan.changes)} changed "
        f"({len(scan.changes) - len(daily) - sum(c.kind != 'daily' for c in scan.changes)} already read), "
        f"{len(requests)} runs requested, {len(scan.rejections)} rejected{' (more next tick)' if scan.more else ''}"
    )
    cursor = dump_cursor(scan.cursor)
    if not requests and not scan.rejections and cursor == context.cursor:
        return dg.SkipReason("no new landing files")  # keeps the stored cursor as it is
    return dg.SensorResult(run_requests=requests, cursor=cursor, asset_events=_rejection_events(scan.rejections))


TELEMETRY_CHAIN = ("points", "anomaly_scores", "health_events", "anomaly_events", "incidents")


def _telemetry_keys(*names: str) -> list[dg.AssetKey]:
    return [dg.AssetKey(["telemetry", n + suffix]) for n in names for suffix in ("", "_quarantine")]


def telemetry_requests(
    changes: Sequence[FolderChange], landing: LandingZone, context: dg.SensorEvaluationContext
) -> list[dg.RunRequest]:
    """New or changed telemetry files → the days their rows fall into (from the points index, else by
    reading the new files' timestamps). Today's data goes to `telemetry/points` and declarative
    automation carries it down the chain; older days (late data, history) get the whole chain in one
    run, since eager automation only acts on the latest partition."""
    if not changes:
        return []
    index = read_index(index_path(str(settings().lake)))
    known = {row[0]: (row[1], row[2]) for row in index.select("path", "size", "mtime_ns").iter_rows()}
    new = []
    for change in changes:
        host, metric = change.folder.split("/")[1:3]
        for name, size, mtime in change.files:
            relative = f"{change.folder}/{name}"
            if known.get(relative) != (size, mtime):
                path = landing.resolve(relative)
                new.append(LandingFile(path, relative, host, metric, size, mtime))
    if not new:
        return []
    typed = type_records(read_landing_files(landing, new))
    days = sorted(d for d in typed.get_column("day").drop_nulls().unique().to_list())
    if not days:
        return []
    today = dt.datetime.now(dt.UTC).date()
    digest = hashlib.sha256("".join(f"{c.folder}={c.digest};" for c in changes).encode()).hexdigest()[:20]
    requests = []
    for span in _spans(days):
        first, last = span[0].isoformat(), span[-1].isoformat()
        live = span == [today]
        tags = {"intelligence/landing": f"telemetry {first}..{last}"}
        if first != last:
            tags |= {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        requests.append(
            dg.RunRequest(
                run_key=f"landing:telemetry:{first}..{last}:{digest}",
                partition_key=first if first == last else None,
                asset_selection=_telemetry_keys("points") if live else _telemetry_keys(*TELEMETRY_CHAIN),
                tags=tags,
            )
        )
    context.log.info(f"{len(new)} new telemetry file(s) with rows on {len(days)} day(s)")
    return requests


def _spans(days: Sequence[dt.date]) -> list[list[dt.date]]:
    spans: list[list[dt.date]] = []
    for day in sorted(days):
        if spans and day == spans[-1][-1] + dt.timedelta(days=1):
            spans[-1].append(day)
        else:
            spans.append([day])
    return spans


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


ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# An active run older than this is presumed stuck (a paused queue, a lost worker with run monitoring off):
# the sensor stops waiting for it, with a warning, rather than hold a folder back forever.
STUCK_AFTER = dt.timedelta(hours=6)


def in_flight(
    instance: dg.DagsterInstance, changes: Sequence[FolderChange], log: logging.Logger | None = None
) -> list[FolderChange]:
    """The changed folders whose source and day a queued or running run already writes (launched from the UI,
    by a backfill, a reroute, or by this sensor for an earlier set of files): raw, cleansed or strict.

    Requesting another run now would race it: two runs writing one partition, the older files possibly last.
    """
    if not changes:
        return []
    sources = {c.source for c in changes}
    written = {k.path[-1]: s for s in sources for k in _source_keys(s, STRICT)}
    busy: dict[str, list[tuple[str, str]]] = defaultdict(list)  # source -> [(first day, last day)]
    oldest = dt.datetime.now(dt.UTC) - STUCK_AFTER
    cursor = None
    while True:  # every active run, page by page: a long backfill queue must not hide the one that is running
        records = instance.get_run_records(filters=dg.RunsFilter(statuses=ACTIVE), limit=500, cursor=cursor)
        for record in records:
            run, tags = record.dagster_run, record.dagster_run.tags
            first = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_start")
            last = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_end")
            touched = {written[k.path[-1]] for k in run.asset_selection or () if k.path[-1] in written}
            if not first or not last or not touched:
                continue
            if record.create_timestamp.astimezone(dt.UTC) < oldest:
                if log is not None:
                    log.warning(f"not waiting for run {run.run_id}: {run.status.value} since {record.create_timestamp}")
                continue
            for source in touched:
                busy[source].append((first, last))
        if len(records) < 500:
            break
        cursor = records[-1].dagster_run.run_id
    return [
        c for c in changes if c.day is not None and any(a <= c.day.isoformat() <= b for a, b in busy.get(c.source, []))
    ]


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
    # The re-run of every source's latest switch to strict is requested on every tick under a run key
    # made from the recorded switch: Dagster launches it once, and a tick that failed after
    # recording a switch (but before returning its request) is healed by the next one.
    for source in MARKETING_SOURCES:
        request = reroute_request(routes, source)
        if request is not None:
            requests.append(request)
    if not events and not requests:
        return dg.SkipReason("every source is on the right route")
    return dg.SensorResult(run_requests=requests, asset_events=events)


def reroute_request(routes: pl.DataFrame, source: str) -> dg.RunRequest | None:
    """The run re-cleansing the affected days of a source's latest switch to strict, if it is on strict."""
    mine = routes.filter(pl.col("source") == source).sort("changed_at")
    if mine.height == 0:
        return None
    last = mine.row(-1, named=True)
    affected = json.loads(last["evidence"] or "{}").get("affected")
    if last["route"] != STRICT or not affected:
        return None
    first_day, last_day = affected
    start, end = dt.date.fromisoformat(first_day), dt.date.fromisoformat(last_day)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return dg.RunRequest(
        run_key=f"reroute:{source}:{STRICT}:{last['effective_from']}:{last['changed_at'].isoformat()}",
        asset_selection=_keys(f"strict_cleansed_{source}", "touchpoints"),
        tags={
            "dagster/asset_partition_range_start": first_day,
            "dagster/asset_partition_range_end": last_day,
            REROUTE_TAG: source,
            MONTHS_TAG: ",".join(_month_keys(days)),
        },
    )


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


# -- telemetry: new incidents → diagnostics and tickets -----------------------------------------------

INCIDENTS_KEY = dg.AssetKey(["telemetry", "incidents"])


@dg.sensor(
    name="incident_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New or updated telemetry/incidents partitions → diagnostics and tickets for those days.",
    asset_selection=dg.AssetSelection.groups("telemetry"),
)
def incident_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    # A plain sensor over the materialization records (not @asset_sensor, which sees only the latest
    # event): a backfill materializes many partitions at once, and every one of them needs a diagnosis.
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=INCIDENTS_KEY, after_storage_id=after), limit=1000, ascending=True
    ).records
    if not records:
        return dg.SkipReason("no new incidents partitions")
    days = sorted({dt.date.fromisoformat(r.partition_key) for r in records if r.partition_key is not None})
    last_id = max(r.storage_id for r in records)
    requests = []
    for span in _spans(days):
        first, last = span[0].isoformat(), span[-1].isoformat()
        tags = (
            {}
            if first == last
            else {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        )
        requests.append(
            dg.RunRequest(
                run_key=f"telemetry-diagnose:{first}..{last}:{last_id}",
                partition_key=first if first == last else None,
                asset_selection=[*_telemetry_keys("diagnostics"), dg.AssetKey(["telemetry", "tickets"])],
                tags=tags,
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=str(last_id))


SENSORS = [
    landing_sensor,
    source_health_sensor,
    reroute_followup_sensor,
    run_failure_alert_sensor,
    incident_sensor,
    automation_sensor,
]
