"""Tickets: one open ticket per host (or `fleet`) and pattern, kept in the warehouse (`telemetry.tickets`).

For each incident a day reports (confidence at least `MIN_CONFIDENCE`), in order of start:

- an incident already linked to a ticket (the same incident seen again, e.g. completed after midnight) only
  updates it: end, severity; a ticket of that one incident follows a changed pattern;
- otherwise, if the host (or the fleet) has an open ticket of that pattern, the incident is linked to it and the
  ticket is updated (count, last incident, severity): repeated anomalies never open a second ticket;
- otherwise a ticket is opened. Its id is derived from the scope, pattern and first incident, so re-running a
  day opens nothing twice.

A ticket is resolved when its host(s) are back to health: after the end of its last incident (all of whose
versions are closed), `RESOLVE_AFTER` (1 h) of 15-minute health intervals in which every stream of the host
is `ok`, including the streams of the evidence (a stopped stream must report again). The resolution time is
the end of that hour. Links live in `telemetry.ticket_incidents`. The state is rewritten in one transaction
through the warehouse (pool `duckdb`); re-running a partition is idempotent.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from assets.telemetry import health_events as health_module
from assets.telemetry import incidents as incidents_module
from assets.telemetry.health_events import INTERVAL
from intelligence import policy
from intelligence.frames import conform
from intelligence.partitions import DAILY, lookback, partition_days
from intelligence.sources import code_version
from resources.warehouse import Warehouse

KEY = dg.AssetKey(["telemetry", "tickets"])
MIN_CONFIDENCE = 0.5
RESOLVE_AFTER = dt.timedelta(hours=1)
SCHEMA_NAME = "telemetry"
TICKETS_TABLE = f"{SCHEMA_NAME}.tickets"
LINKS_TABLE = f"{SCHEMA_NAME}.ticket_incidents"
ONE_OPEN_CHECK = "one_open_ticket_per_scope_and_pattern"

TICKET_SCHEMA: dict[str, pl.DataType] = {
    "ticket_id": pl.String(),
    "scope": pl.String(),  # a host, or "fleet"
    "pattern": pl.String(),
    "hosts": pl.String(),
    "status": pl.String(),  # open / resolved
    "opened_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
    "resolved_at": pl.Datetime("us", "UTC"),
    "last_incident_end": pl.Datetime("us", "UTC"),
    "incident_count": pl.Int64(),
    "severity": pl.Float64(),
    "confidence": pl.Float64(),
    "first_incident_id": pl.String(),
    "last_incident_id": pl.String(),
    "summary": pl.String(),
    "opened_partition": pl.Date(),
    "updated_partition": pl.Date(),
}
LINK_SCHEMA: dict[str, pl.DataType] = {
    "ticket_id": pl.String(),
    "incident_id": pl.String(),
    "pattern": pl.String(),
    "hosts": pl.String(),
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "status": pl.String(),
    "metrics": pl.String(),
    "partition": pl.Date(),
}


@dataclass
class TicketState:
    tickets: dict[str, dict[str, Any]]
    links: dict[str, dict[str, Any]]  # by incident id

    @classmethod
    def from_frames(cls, tickets: pl.DataFrame, links: pl.DataFrame) -> "TicketState":
        return cls(
            tickets={r["ticket_id"]: r for r in tickets.iter_rows(named=True)},
            links={r["incident_id"]: r for r in links.iter_rows(named=True)},
        )

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        tickets = pl.DataFrame(list(self.tickets.values()), schema=TICKET_SCHEMA, orient="row")
        links = pl.DataFrame(list(self.links.values()), schema=LINK_SCHEMA, orient="row")
        return tickets.sort("opened_at", "ticket_id"), links.sort("start", "incident_id")

    def open_ticket(self, scope: str, pattern: str) -> dict[str, Any] | None:
        for ticket in self.tickets.values():
            if ticket["status"] == "open" and ticket["scope"] == scope and ticket["pattern"] == pattern:
                return ticket
        return None


def _scope(incident: dict[str, Any]) -> str:
    return "fleet" if incident["scope"] == "fleet" else str(incident["hosts"])


def _metrics(incident: dict[str, Any]) -> str:
    return ",".join(sorted({e.split("|")[1] for e in str(incident["event_ids"]).split(",") if e.count("|") >= 2}))


def apply_incidents(state: TicketState, incidents: pl.DataFrame, day: dt.date) -> dict[str, int]:
    """Open, update or link tickets for the incidents one day reports (see the module docstring)."""
    counts = {"opened": 0, "updated": 0, "linked": 0}
    todays = incidents.filter(pl.col("confidence") >= MIN_CONFIDENCE).sort("start", "incident_id")
    for inc in todays.iter_rows(named=True):
        pattern, scope = str(inc["pattern"]), _scope(inc)
        link = state.links.get(inc["incident_id"])
        if link is not None:  # seen before: update the link and its ticket
            ticket = state.tickets[link["ticket_id"]]
            siblings = [k for k, v in state.links.items() if v["ticket_id"] == ticket["ticket_id"]]
            if pattern != ticket["pattern"] and len(siblings) == 1 and state.open_ticket(scope, pattern) is None:
                ticket["pattern"] = pattern
            link.update(pattern=pattern, end=max(link["end"], inc["end"]), status=str(inc["status"]))
            link.update(partition=max(link["partition"], day), metrics=_metrics(inc))
            _touch(ticket, inc, day, count=False)
            counts["updated"] += 1
            continue
        found = state.open_ticket(scope, pattern)
        if found is None:
            ticket_id = f"{scope}:{pattern}:{inc['start']:%Y%m%dT%H%M%S}"
            if ticket_id in state.tickets:  # a resolved ticket of the same start: keep ids unique
                ticket_id += f":{inc['incident_id']}"
            ticket = {
                "ticket_id": ticket_id,
                "scope": scope,
                "pattern": pattern,
                "hosts": inc["hosts"],
                "status": "open",
                "opened_at": inc["start"],
                "updated_at": inc["start"],
                "resolved_at": None,
                "last_incident_end": inc["end"],
                "incident_count": 0,
                "severity": inc["severity"],
                "confidence": inc["confidence"],
                "first_incident_id": inc["incident_id"],
                "last_incident_id": inc["incident_id"],
                "summary": inc["summary"],
                "opened_partition": day,
                "updated_partition": day,
            }
            state.tickets[ticket_id] = ticket
            counts["opened"] += 1
        else:
            ticket = found
            counts["linked"] += 1
        state.links[inc["incident_id"]] = {
            "ticket_id": ticket["ticket_id"],
            "incident_id": inc["incident_id"],
            "pattern": pattern,
            "hosts": inc["hosts"],
            "start": inc["start"],
            "end": inc["end"],
            "status": str(inc["status"]),
            "metrics": _metrics(inc),
            "partition": day,
        }
        _touch(ticket, inc, day, count=True)
    return counts


def _touch(ticket: dict[str, Any], inc: dict[str, Any], day: dt.date, count: bool) -> None:
    if count:
        ticket["incident_count"] += 1
        ticket["last_incident_id"] = inc["incident_id"]
        ticket["updated_at"] = max(ticket["updated_at"], inc["start"])
        ticket["summary"] = inc["summary"]
    hosts = set(ticket["hosts"].split(",")) | set(str(inc["hosts"]).split(","))
    ticket["hosts"] = ",".join(sorted(hosts))
    ticket["last_incident_end"] = max(ticket["last_incident_end"], inc["end"])
    ticket["severity"] = max(ticket["severity"], inc["severity"])
    ticket["confidence"] = max(ticket["confidence"], inc["confidence"])
    ticket["updated_partition"] = max(ticket["updated_partition"], day)


def healthy_since(health: pl.DataFrame, hosts: list[str], metrics: set[str], after: dt.datetime) -> dt.datetime | None:
    """The end of the first RESOLVE_AFTER of intervals after `after` in which every stream of `hosts` is ok
    (and every one of `metrics`, as host/metric, reports), or None."""
    needed = int(RESOLVE_AFTER / INTERVAL)
    frame = health.filter(pl.col("host").is_in(hosts) & (pl.col("interval_start") >= after))
    if frame.height == 0:
        return None
    per_interval = (
        frame.group_by("interval_start")
        .agg(
            (pl.col("state").cast(pl.String) == "ok").all().alias("ok"),
            pl.concat_str("host", pl.lit("/"), "metric").alias("streams"),
        )
        .sort("interval_start")
    )
    run = 0
    previous: dt.datetime | None = None
    for start, ok, streams in per_interval.iter_rows():
        healthy = bool(ok) and metrics <= set(streams)
        if healthy and run > 0 and previous is not None and start - previous == INTERVAL:
            run += 1
        else:
            run = 1 if healthy else 0
        previous = start
        if run >= needed:
            return start + INTERVAL
    return None


def resolve(state: TicketState, health: pl.DataFrame, day: dt.date) -> int:
    """Resolve the open tickets whose host(s) are back to health; the number resolved."""
    resolved = 0
    for ticket in state.tickets.values():
        if ticket["status"] != "open":
            continue
        links = [v for v in state.links.values() if v["ticket_id"] == ticket["ticket_id"]]
        if any(v["status"] == "open" for v in links):
            continue  # an incident still in progress
        hosts = ticket["hosts"].split(",")
        evidence = {f"{h}/{m}" for v in links for m in v["metrics"].split(",") if m for h in v["hosts"].split(",")}
        when = healthy_since(health, hosts, evidence, ticket["last_incident_end"])
        if when is not None:
            ticket.update(status="resolved", resolved_at=when, updated_partition=max(ticket["updated_partition"], day))
            resolved += 1
    return resolved


# --------------------------------------------------------------------------------------------------------------
# the warehouse


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA_NAME}")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {TICKETS_TABLE} (
            ticket_id VARCHAR PRIMARY KEY, scope VARCHAR, pattern VARCHAR, hosts VARCHAR, status VARCHAR,
            opened_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, resolved_at TIMESTAMPTZ, last_incident_end TIMESTAMPTZ,
            incident_count BIGINT, severity DOUBLE, confidence DOUBLE, first_incident_id VARCHAR,
            last_incident_id VARCHAR, summary VARCHAR, opened_partition DATE, updated_partition DATE)"""
    )
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {LINKS_TABLE} (
            ticket_id VARCHAR, incident_id VARCHAR PRIMARY KEY, pattern VARCHAR, hosts VARCHAR,
            start TIMESTAMPTZ, "end" TIMESTAMPTZ, status VARCHAR, metrics VARCHAR, partition DATE)"""
    )


def _read(con: duckdb.DuckDBPyConnection, table: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    frame = con.sql(f"SELECT * FROM {table}").pl()
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def load_state(con: duckdb.DuckDBPyConnection) -> TicketState:
    return TicketState.from_frames(_read(con, TICKETS_TABLE, TICKET_SCHEMA), _read(con, LINKS_TABLE, LINK_SCHEMA))


def save_state(con: duckdb.DuckDBPyConnection, state: TicketState) -> None:
    tickets, links = state.frames()
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_tickets", tickets.to_arrow())
        con.register("_links", links.to_arrow())
        con.execute(f"DELETE FROM {TICKETS_TABLE}")
        con.execute(f"INSERT INTO {TICKETS_TABLE} SELECT * FROM _tickets")
        con.execute(f"DELETE FROM {LINKS_TABLE}")
        con.execute(f"INSERT INTO {LINKS_TABLE} SELECT * FROM _links")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_tickets")
        con.unregister("_links")


def process_days(
    state: TicketState, incidents: pl.DataFrame, health: pl.DataFrame, days: list[dt.date]
) -> dict[str, int]:
    """Apply each day's incidents, then resolve with the health of that day and the day before, in order."""
    totals = {"opened": 0, "updated": 0, "linked": 0, "resolved": 0}
    for day in sorted(days):
        counts = apply_incidents(state, incidents.filter(pl.col("day") == day), day)
        seen = health.filter(pl.col("day").is_between(day - dt.timedelta(days=1), day))
        counts["resolved"] = resolve(state, seen, day)
        for k, v in counts.items():
            totals[k] += v
    return totals


def _open_markdown(tickets: pl.DataFrame, limit: int = 25) -> str:
    shown = tickets.filter(pl.col("status") == "open").sort("updated_at", descending=True).head(limit)
    if shown.height == 0:
        return "_no open tickets_"
    lines = ["| ticket | pattern | hosts | opened | incidents | severity |", "|---|---|---|---|---:|---:|"]
    for r in shown.iter_rows(named=True):
        lines.append(
            f"| {r['ticket_id']} | {r['pattern']} | {r['hosts']} | {r['opened_at']:%Y-%m-%d %H:%M} | "
            f"{r['incident_count']} | {r['severity']:.2f} |"
        )
    return "\n".join(lines)


VERSION = code_version("1", apply_incidents, resolve, healthy_since, save_state)


@policy.asset(
    key=KEY,
    partitions_def=DAILY,
    group_name="telemetry",
    code_version=VERSION,
    pool=policy.DUCKDB_POOL,
    kinds={"duckdb"},
    ins={
        "incidents": dg.AssetIn(["telemetry", "incidents"]),
        "health_events": dg.AssetIn(
            ["telemetry", "health_events"],
            partition_mapping=lookback(-1),
            metadata={"allow_missing_partitions": True},
        ),
    },
    check_specs=[
        dg.AssetCheckSpec(ONE_OPEN_CHECK, asset=KEY, description="At most one open ticket per scope and pattern.")
    ],
    description="Tickets (table telemetry.tickets): one open ticket per host and pattern, resolved on health.",
)
def tickets(
    context: dg.AssetExecutionContext, warehouse: Warehouse, incidents: pl.LazyFrame, health_events: pl.LazyFrame
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """One open ticket per host and pattern: opened, updated by repeated incidents, resolved when healthy."""
    days = partition_days(context)
    found = conform(incidents, incidents_module.SCHEMA).collect()
    health = conform(health_events, health_module.SCHEMA).select("host", "metric", "interval_start", "state", "day")
    with warehouse.write() as con:
        ensure_tables(con)
        state = load_state(con)
        totals = process_days(state, found, health.collect(), days)
        save_state(con, state)
    table, _ = state.frames()
    duplicates = table.filter(pl.col("status") == "open").group_by("scope", "pattern").len().filter(pl.col("len") > 1)
    yield dg.MaterializeResult(
        metadata={
            **totals,
            "open_tickets": int((table["status"] == "open").sum()) if table.height else 0,
            "tickets_total": table.height,
            "table": TICKETS_TABLE,
            "open": dg.MetadataValue.md(_open_markdown(table)),
        }
    )
    yield dg.AssetCheckResult(
        check_name=ONE_OPEN_CHECK,
        passed=duplicates.height == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "every scope and pattern has at most one open ticket"
            if duplicates.height == 0
            else f"{duplicates.height} scope/pattern pairs with several open tickets → select * from {TICKETS_TABLE}"
        ),
    )
