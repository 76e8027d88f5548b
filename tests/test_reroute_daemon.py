"""The feedback loop end to end through the real daemon: files land, sensors fire, social is rerouted.

A temp DAGSTER_HOME (the project's dagster.yaml, instance created before any process starts) and a
temp INTELLIGENCE_HOME; `dagster-daemon run` as a subprocess with the real, RUNNING-by-default
sensors at their real intervals (landing 30 s, source health 60 s). A generated world's files land
day by day: day 1 is clean, on day 2 social goes bad. The landing sensor must launch each day's
standard runs (once per set of files), the source-health sensor must switch social to the strict
route (recorded in DuckDB, alerted), and the reroute run of the strict path must succeed.

To keep it short: the rule is `INTELLIGENCE_REROUTE_K=1`, `INTELLIGENCE_REROUTE_N=2` (one bad day of
the last two switches, whichever order the two days' runs finish in); the world is small and only
the sources the strict path's downstream run needs land (social, and web and crm, which touchpoints
requires; ads and e-mail are optional inputs). Day 2 lands as soon as day 1's runs are launched.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster_processes import PROJECT_ROOT, VENV_BIN, DagsterProcess, describe, start_process, stop_all, wait_until

from intelligence.routing import STRICT, load_routes
from intelligence.sensors import REROUTE_TAG
from intelligence.synthetic.marketing import DefectRates, GeneratorConfig, generate_marketing
from resources.warehouse import Warehouse

pytestmark = pytest.mark.e2e

START = dt.date(2024, 1, 1)
DAYS = (START, START + dt.timedelta(days=1))
SOURCES = ("social", "web", "crm")
BUDGET_SECONDS = 280  # all the waiting together: about 2 min on a quiet 2-core machine, 4 under load
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    # Create the SQLite storages before any process starts (see test_e2e_webserver: dagster-io/dagster#27390).
    with dg.DagsterInstance.from_config(str(home)):
        pass
    return home


def _land(staging: Path, landing: Path, day: dt.date) -> None:
    """One day's files arrive (settled: an uploader's mtimes are in the past)."""
    old = time.time() - 60
    for source in SOURCES:
        target = landing / source / day.isoformat()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging / source / day.isoformat(), target)
        for path in [*target.iterdir(), target]:
            os.utime(path, (old, old))


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(1.0, self.end - time.monotonic())


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[DagsterProcess, Path, Path, Path]]:
    dagster_home = _dagster_home(tmp_path)
    intelligence_home = tmp_path / "intelligence_home"
    staging = tmp_path / "staging"
    generate_marketing(
        GeneratorConfig(
            start=START,
            days=len(DAYS),
            people=200,
            seed=3,
            defects=DefectRates(duplicate=0.0, null=0.0, malformed=0.0, out_of_range=0.0, late_file=0.0),
            flaky_days=(1,),
            flaky_defect_rate=0.6,
        ),
        landing_root=staging,
        truth_root=intelligence_home / "truth",
    )
    (intelligence_home / "landing").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTELLIGENCE_")}
    env.update(
        DAGSTER_HOME=str(dagster_home),
        INTELLIGENCE_HOME=str(intelligence_home),
        INTELLIGENCE_START_DATE=START.isoformat(),
        INTELLIGENCE_REROUTE_K="1",
        INTELLIGENCE_REROUTE_N="2",
        PYTHONUNBUFFERED="1",
    )
    process = start_process(
        "daemon", [str(VENV_BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, tmp_path / "logs"
    )
    try:
        yield process, dagster_home, intelligence_home, staging
    finally:
        stop_all([process], grace_seconds=5)


def _runs(instance: dg.DagsterInstance, **tags: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags=tags)))


def _landing_runs(instance: dg.DagsterInstance, day: dt.date, finished: bool) -> list[dg.DagsterRun] | None:
    """The landing sensor's runs covering `day`, one per landed source, once launched (or finished)."""
    runs = [
        r
        for r in _runs(instance, **{"dagster/sensor_name": "landing_sensor"})
        if day.isoformat() in r.tags.get("intelligence/landing", "")
    ]
    if {r.tags["intelligence/landing"].split(" ")[0] for r in runs} != set(SOURCES):
        return None
    if finished and any(r.status not in FINISHED for r in runs):
        return None
    return runs


def test_a_flaky_source_is_rerouted_through_the_daemon(daemon: tuple[DagsterProcess, Path, Path, Path]) -> None:
    process, dagster_home, intelligence_home, staging = daemon
    landing = intelligence_home / "landing"
    warehouse = Warehouse(path=str(intelligence_home / "warehouse.duckdb"))
    deadline = Deadline(BUDGET_SECONDS)
    started = time.monotonic()
    timings: dict[str, float] = {}

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        _land(staging, landing, DAYS[0])
        wait_until(
            lambda: _landing_runs(instance, DAYS[0], finished=False),
            timeout=deadline.left(),
            what="the landing sensor's runs of day 1",
            processes=[process],
            interval=2,
        )
        timings["day 1 runs launched"] = time.monotonic() - started
        _land(staging, landing, DAYS[1])
        for when in DAYS:
            runs = wait_until(
                lambda when=when: _landing_runs(instance, when, finished=True),
                timeout=deadline.left(),
                what=f"the landing sensor's runs of {when} to finish",
                processes=[process],
                interval=2,
            )
            assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}, describe([process])
        timings["standard runs done"] = time.monotonic() - started

        def rerouted() -> list[dg.DagsterRun] | None:
            runs = _runs(instance, **{REROUTE_TAG: "social"})
            return runs if runs and all(r.status in FINISHED for r in runs) else None

        reroutes = wait_until(
            rerouted, timeout=deadline.left(), what="the reroute run of social", processes=[process], interval=2
        )
        timings["strict reroute run done"] = time.monotonic() - started
        print("timings (s since the first files landed):", {k: round(v) for k, v in timings.items()})

        # The strict path ran for the bad day and succeeded, launched by the health sensor.
        assert [r.status for r in reroutes] == [dg.DagsterRunStatus.SUCCESS], describe([process])
        (reroute,) = reroutes
        assert reroute.tags["dagster/sensor_name"] == "source_health_sensor"
        assert reroute.tags["dagster/asset_partition_range_start"] == DAYS[1].isoformat()
        strict = dg.AssetKey(["marketing", "strict_cleansed_social"])
        assert instance.get_materialized_partitions(strict) == {DAYS[1].isoformat()}

        # Exactly once: one landing run per source and day, each with its own run key.
        landing_runs = _runs(instance, **{"dagster/sensor_name": "landing_sensor"})
        assert len(landing_runs) == len(DAYS) * len(SOURCES)
        assert len({r.tags["dagster/run_key"] for r in landing_runs}) == len(landing_runs)

    # The switch is recorded with its reason, only for social, and the operator was alerted.
    routes = load_routes(warehouse)
    assert [(r["source"], r["route"], r["effective_from"]) for r in routes.iter_rows(named=True)] == [
        ("social", STRICT, DAYS[1])
    ]
    assert "1 of the last 2 partitions above the 10% error rate" in routes["reason"][0]
    with warehouse.read() as con:
        alerts = con.sql("select key from alerts where kind = 'reroute'").fetchall()
    assert alerts == [("reroute:social:strict",)]
