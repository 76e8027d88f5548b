"""Telemetry choreography: landing files → points (and the chain), eager automation, incidents → tickets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from intelligence.settings import Settings
from intelligence.synthetic.telemetry import TelemetryConfig, generate_telemetry

CHAIN = {"points", "anomaly_scores", "health_events", "anomaly_events", "incidents"}


@pytest.fixture
def setup(home: Settings) -> Iterator[tuple[Settings, dg.DagsterInstance, dg.Definitions, dict]]:
    from intelligence.definitions import defs
    from intelligence.resources import build_resources

    with dg.DagsterInstance.ephemeral() as instance:
        yield home, instance, defs, build_resources(home)


def _tick(sensor, instance, defs, resources, cursor=None):  # type: ignore[no-untyped-def]
    return sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=resources)
    )


def _names(request: dg.RunRequest) -> set[str]:
    return {k.path[-1] for k in request.asset_selection or [] if k.path[0] == "telemetry"}


def _run(request: dg.RunRequest, instance, defs, resources) -> dg.ExecuteInProcessResult:  # type: ignore[no-untyped-def]
    return dg.materialize(
        [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)],
        selection=dg.AssetSelection.assets(*(request.asset_selection or [])),
        partition_key=request.partition_key,
        tags=dict(request.tags),
        instance=instance,
        resources=resources,
    )


def test_history_lands_as_one_chain_run_and_incidents_become_tickets(setup) -> None:  # type: ignore[no-untyped-def]
    from intelligence.sensors import incident_sensor, landing_sensor

    config, instance, defs, resources = setup
    generate_telemetry(
        TelemetryConfig(seed=5, hosts=2, days=6, start=dt.date(2024, 3, 1), incidents_per_host=1.0),
        config.landing,
        config.truth,
    )
    for path in config.landing.rglob("*.csv"):  # landed a while ago, past the sensor's settle time
        past = dt.datetime.now(dt.UTC).timestamp() - 60
        import os

        os.utime(path, (past, past))
    first = _tick(landing_sensor, instance, defs, resources)
    telemetry = [r for r in first.run_requests if r.run_key and r.run_key.startswith("landing:telemetry")]
    assert len(telemetry) == 1, (first.skip_message, first.run_requests, first.log_key)
    request = telemetry[0]
    # Six past days: the whole chain in one single-run backfill (automation only acts on today).
    assert request.tags["dagster/asset_partition_range_start"] == "2024-03-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-06"
    assert _names(request) == CHAIN | {f"{n}_quarantine" for n in CHAIN}
    assert _run(request, instance, defs, resources).success
    # The same files on the next tick: nothing new.
    again = _tick(landing_sensor, instance, defs, resources, first.cursor)
    assert not [r for r in again.run_requests if r.run_key and "telemetry" in r.run_key]

    diagnose = _tick(incident_sensor, instance, defs, resources)
    assert len(diagnose.run_requests) == 1
    assert {k.to_user_string() for k in diagnose.run_requests[0].asset_selection} >= {
        "telemetry/diagnostics",
        "telemetry/tickets",
    }
    assert _run(diagnose.run_requests[0], instance, defs, resources).success
    assert _tick(incident_sensor, instance, defs, resources, diagnose.cursor).run_requests == []


def test_todays_file_goes_to_points_and_eager_automation_carries_the_chain(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from intelligence.sensors import landing_sensor

    config, instance, defs, resources = setup
    today = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    folder = config.landing / "telemetry" / "web-1" / "cpu"
    folder.mkdir(parents=True)
    rows = "\n".join(f"{(today - dt.timedelta(minutes=5 * i)).isoformat()},{40 + i % 7}" for i in range(6))
    (folder / "now.csv").write_text(f"timestamp,value\n{rows}\n")
    past = dt.datetime.now(dt.UTC).timestamp() - 60
    import os

    os.utime(folder / "now.csv", (past, past))
    tick = _tick(landing_sensor, instance, defs, resources)
    telemetry = [r for r in tick.run_requests if r.run_key and r.run_key.startswith("landing:telemetry")]
    days = {today.date().isoformat(), (today - dt.timedelta(minutes=25)).date().isoformat()}
    if len(days) > 1:
        pytest.fail("run this test away from midnight UTC: the sample spans two days")  # pragma: no cover
    assert [r.partition_key for r in telemetry] == [today.date().isoformat()]
    assert _names(telemetry[0]) == {"points", "points_quarantine"}
    # The automation sensor has been ticking all along: its state before the new points landed...
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert _run(telemetry[0], instance, defs, resources).success
    # ...and its next tick, after: the newly updated points pull anomaly scores for today.
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    requested = {
        name: result.get_requested_partitions(dg.AssetKey(["telemetry", name]))
        for name in ("anomaly_scores", "health_events", "anomaly_events", "incidents", "diagnostics")
    }
    # The chain down to incidents is requested for today (the daemon launches it in dependency order);
    # diagnostics and tickets are the incident sensor's, not automation's.
    today_key = today.date().isoformat()
    assert {name for name, keys in requested.items() if keys == {today_key}} == {
        "anomaly_scores",
        "health_events",
        "anomaly_events",
        "incidents",
    }
    assert not requested["diagnostics"]
