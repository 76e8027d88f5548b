"""Tickets as a state machine (pure) and in a real DuckDB file: no storms, resolution on health, idempotence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from assets.telemetry import incidents as incidents_module
from assets.telemetry.tickets import (
    TicketState,
    ensure_tables,
    load_state,
    process_days,
    save_state,
)
from resources.warehouse import Warehouse

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DAY1, DAY2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)


def incident(host: str, pattern: str, start: dt.datetime, minutes: int = 20, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "incident_id": f"{host}|{start:%Y-%m-%dT%H:%M:%SZ}",
        "pattern": pattern,
        "scope": "host",
        "hosts": host,
        "host_count": 1,
        "start": start,
        "end": start + dt.timedelta(minutes=minutes),
        "status": "closed",
        "confidence": 0.9,
        "severity": 0.7,
        "signals": "latency:up,errors:up",
        "event_ids": f"{host}|latency|x,{host}|errors|x",
        "evidence": "[]",
        "summary": f"{pattern} on {host}",
        "day": start.date(),
    }
    row.update(extra)
    return row


def incidents(*rows: dict[str, object]) -> pl.DataFrame:
    frame = pl.DataFrame(list(rows), schema={k: v for k, v in incidents_module.SCHEMA.items()}, orient="row")
    return frame


def health(host: str, start: dt.datetime, states: list[str], metrics: tuple[str, ...] = ("latency", "errors")) -> list:
    step = dt.timedelta(minutes=15)
    return [
        {"host": host, "metric": m, "interval_start": start + i * step, "state": s, "day": (start + i * step).date()}
        for i, s in enumerate(states)
        for m in metrics
    ]


def health_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "host": pl.String,
        "metric": pl.String,
        "interval_start": pl.Datetime("us", "UTC"),
        "state": pl.String,
        "day": pl.Date,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def empty_state() -> TicketState:
    return TicketState(tickets={}, links={})


def test_repeated_anomalies_update_one_open_ticket_and_it_resolves_when_the_host_is_healthy() -> None:
    hour = dt.timedelta(hours=1)
    repeated = [incident("web-1", "service_degradation", T0 + k * hour) for k in range(5)]
    other = incident("web-2", "service_degradation", T0 + 2 * hour)
    unhealthy = health("web-1", T0, ["warn"] * 4 * 6) + health("web-2", T0, ["ok"] * 4 * 6)
    state = empty_state()
    counts = process_days(state, incidents(*repeated, other), health_frame(unhealthy), [DAY1])
    tickets, links = state.frames()
    assert counts["opened"] == 2 and counts["linked"] == 4
    web1 = tickets.filter(pl.col("scope") == "web-1").row(0, named=True)
    assert (web1["status"], web1["incident_count"]) == ("open", 5)
    assert web1["last_incident_end"] == T0 + 4 * hour + dt.timedelta(minutes=20)
    assert links.height == 6
    # web-2 was healthy for an hour after its incident: resolved at the end of that hour
    web2 = tickets.filter(pl.col("scope") == "web-2").row(0, named=True)
    assert web2["status"] == "resolved" and web2["resolved_at"] == T0 + 2 * hour + dt.timedelta(minutes=30 + 60)

    recovered = health("web-1", T0 + 6 * hour, ["ok"] * 4)
    counts = process_days(state, incidents(), health_frame(unhealthy + recovered), [DAY1])
    web1 = state.frames()[0].filter(pl.col("scope") == "web-1").row(0, named=True)
    assert counts["resolved"] == 1 and web1["status"] == "resolved"
    assert web1["resolved_at"] == T0 + 7 * hour

    # a new incident after resolution opens a new ticket
    later = incident("web-1", "service_degradation", T0 + 9 * hour)
    process_days(state, incidents(later), health_frame([]), [DAY1])
    tickets = state.frames()[0].filter(pl.col("scope") == "web-1")
    assert tickets["status"].to_list() == ["resolved", "open"]


def test_an_incident_seen_again_the_next_day_updates_its_ticket_and_reruns_change_nothing() -> None:
    start = T0 + dt.timedelta(hours=23, minutes=30)
    open_version = incident("db-1", "unclassified", start, minutes=25, status="open", confidence=0.6)
    closed_version = incident("db-1", "cpu_saturation", start, minutes=90, day=DAY2)
    state = empty_state()
    process_days(state, incidents(open_version), health_frame([]), [DAY1])
    process_days(state, incidents(closed_version), health_frame([]), [DAY2])
    tickets, links = state.frames()
    assert tickets.height == 1 and links.height == 1
    ticket = tickets.row(0, named=True)
    # the ticket of that single incident follows its final classification and end
    assert (ticket["pattern"], ticket["incident_count"]) == ("cpu_saturation", 1)
    assert ticket["last_incident_end"] == start + dt.timedelta(minutes=90)
    before = state.frames()
    process_days(state, incidents(closed_version), health_frame([]), [DAY2])
    after = state.frames()
    assert before[0].equals(after[0]) and before[1].equals(after[1])


def test_low_confidence_incidents_and_open_incidents_do_not_open_or_resolve_tickets() -> None:
    ongoing = incident("web-3", "traffic_surge", T0, status="open")
    weak = incident("web-4", "unclassified", T0, confidence=0.3)
    healthy = health("web-3", T0 + dt.timedelta(hours=1), ["ok"] * 8, metrics=("latency", "errors", "requests"))
    state = empty_state()
    process_days(state, incidents(ongoing, weak), health_frame(healthy), [DAY1])
    tickets = state.frames()[0]
    assert tickets["scope"].to_list() == ["web-3"] and tickets["status"].to_list() == ["open"]


def test_a_silent_failure_resolves_only_once_the_stopped_stream_reports_again() -> None:
    stop = incident(
        "web-5", "silent_failure", T0, minutes=60, event_ids="web-5|requests|stop|x", signals="requests:down"
    )
    others_ok = health("web-5", T0 + dt.timedelta(hours=1), ["ok"] * 8, metrics=("cpu", "latency"))
    state = empty_state()
    process_days(state, incidents(stop), health_frame(others_ok), [DAY1])
    assert state.frames()[0]["status"].to_list() == ["open"]
    back = health("web-5", T0 + dt.timedelta(hours=1), ["ok"] * 8, metrics=("requests",))
    process_days(state, incidents(), health_frame(others_ok + back), [DAY1])
    assert state.frames()[0]["status"].to_list() == ["resolved"]


def test_the_state_round_trips_through_a_duckdb_file(tmp_path: Path) -> None:
    warehouse = Warehouse(path=str(tmp_path / "warehouse.duckdb"))
    state = empty_state()
    process_days(state, incidents(incident("web-1", "memory_leak", T0)), health_frame([]), [DAY1])
    with warehouse.write() as con:
        ensure_tables(con)
        save_state(con, state)
        save_state(con, state)  # rewriting the same state is harmless
    with warehouse.read() as con:
        loaded = load_state(con)
        count = con.execute("select count(*) from telemetry.tickets where status = 'open'").fetchone()
    assert count == (1,)
    assert loaded.frames()[0].equals(state.frames()[0])
    assert loaded.frames()[1].equals(state.frames()[1])
