"""The feedback loop: the routing rule's hysteresis, the source-health sensor end to end, and alerts.

- `decide` against hand-built rate sequences (k of n to switch, m consecutive clean to come back,
  `since`, no flapping), and the routing-table helpers;
- the loop in process on a generated world whose social source goes bad for two days: files land
  day by day, the real landing sensor requests each day's runs, the real source-health sensor is
  ticked after each day (its run requests executed, its asset events recorded as the daemon
  records them), on a real (ephemeral) instance with real DuckDB and Parquet files;
- the alert sink (dedup within the cooldown, JSONL, webhook through a local HTTP server, a dead
  webhook, the URL through `dg.EnvVar` kept out of snapshots) and the run-failure alert sensor.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from dagster_processes import free_port

from intelligence.definitions import defs
from intelligence.resources import WEBHOOK_ENV, build_resources
from intelligence.routing import (
    STANDARD,
    STRICT,
    FeedbackPolicy,
    current_route,
    decide,
    load_routes,
    route_on,
    select_routed,
    strict_days,
)
from intelligence.sensors import (
    MARKETING_SOURCES,
    REROUTE_TAG,
    ROUTING_KEY,
    landing_sensor,
    run_failure_alert_sensor,
    source_health_sensor,
)
from intelligence.settings import Settings
from intelligence.synthetic.marketing import DefectRates, GeneratorConfig, generate_marketing
from resources.alerts import AlertSink
from resources.warehouse import Warehouse

START = dt.date(2024, 1, 1)
POLICY = FeedbackPolicy(k=2, n=3, m=3, threshold=0.10)
BAD, GOOD = 0.30, 0.02
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
POLICY_ENV = (
    "INTELLIGENCE_REROUTE_K",
    "INTELLIGENCE_REROUTE_N",
    "INTELLIGENCE_RECOVER_M",
    "INTELLIGENCE_REROUTE_THRESHOLD",
)


def day(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


def rates(*values: float, first: int = 0) -> dict[dt.date, float]:
    """Error rates of consecutive days, in evaluation order (oldest first)."""
    return {day(first + i): v for i, v in enumerate(values)}


# -- hysteresis of the routing rule ---------------------------------------------------------------------


def test_a_single_bad_day_does_nothing() -> None:
    assert decide("social", STANDARD, rates(GOOD, BAD, GOOD), {}, None, POLICY) is None
    assert decide("social", STANDARD, rates(GOOD, GOOD, BAD), {}, None, POLICY) is None


def test_k_of_the_last_n_breaching_switches_to_strict_from_the_first_breach() -> None:
    standard = rates(GOOD, GOOD, BAD, GOOD, BAD)
    switch = decide("social", STANDARD, standard, {}, None, POLICY)
    assert switch is not None
    assert (switch.route, switch.effective_from) == (STRICT, day(2))
    assert switch.affected == (day(2), day(3), day(4))  # re-run through strict, good day in between too
    assert "2 of the last 3" in switch.reason
    assert switch.evidence["standard_error_rates"] == {day(i).isoformat(): standard[day(i)] for i in (2, 3, 4)}


def test_breaches_further_apart_than_the_window_do_nothing() -> None:
    assert decide("social", STANDARD, rates(BAD, GOOD, GOOD, BAD, GOOD, GOOD, BAD), {}, None, POLICY) is None


def test_a_rate_at_the_threshold_is_clean() -> None:
    assert decide("social", STANDARD, rates(0.10, 0.10, 0.10), {}, None, POLICY) is None
    assert decide("social", STANDARD, rates(0.1001, 0.10, 0.1001), {}, None, POLICY) is not None


def test_m_consecutive_clean_partitions_are_needed_to_switch_back() -> None:
    since = day(2)
    assert decide("social", STRICT, {}, rates(BAD, BAD, GOOD, GOOD, first=2), since, POLICY) is None
    assert decide("social", STRICT, {}, rates(BAD, GOOD, GOOD, BAD, GOOD, GOOD, first=2), since, POLICY) is None
    back = decide("social", STRICT, {}, rates(BAD, BAD, GOOD, GOOD, GOOD, first=2), since, POLICY)
    assert back is not None
    assert (back.route, back.effective_from, back.affected) == (STANDARD, day(7), ())
    assert "3 consecutive clean" in back.reason
    assert list(back.evidence["strict_error_rates"]) == [day(i).isoformat() for i in (4, 5, 6)]


def test_since_is_respected_after_switching_back() -> None:
    """Old breaches from before the switch back never count again; new ones do, k of n as ever."""
    history = rates(GOOD, GOOD, BAD, BAD, GOOD, GOOD, GOOD)  # the stretch that caused the first switch
    since = day(7)
    assert decide("social", STANDARD, {**history, **rates(GOOD, first=7)}, {}, since, POLICY) is None
    assert decide("social", STANDARD, {**history, **rates(BAD, first=7)}, {}, since, POLICY) is None
    again = decide("social", STANDARD, {**history, **rates(BAD, GOOD, BAD, first=7)}, {}, since, POLICY)
    assert again is not None and again.effective_from == day(7)
    # Strict rates from before the current strict stretch do not count towards recovery either.
    old_clean = rates(GOOD, GOOD, GOOD)
    assert decide("social", STRICT, {}, {**old_clean, **rates(BAD, GOOD, first=5)}, day(5), POLICY) is None


def simulate(values: list[float], policy: FeedbackPolicy = POLICY) -> list[tuple[dt.date, str, dt.date]]:
    """The sensor's loop on daily rates: every day is evaluated on the standard path; days on the strict
    route (and days re-run on a switch) are evaluated on the strict path too, with the same defect rate."""
    standard: dict[dt.date, float] = {}
    strict: dict[dt.date, float] = {}
    route, since = STANDARD, None
    switches = []
    for i, value in enumerate(values):
        standard[day(i)] = value
        if route == STRICT:
            strict[day(i)] = value
        switch = decide("social", route, standard, strict, since, policy)
        if switch is not None:
            switches.append((day(i), switch.route, switch.effective_from))
            route, since = switch.route, switch.effective_from
            for affected in switch.affected:
                strict.pop(affected, None)
                strict[affected] = standard[affected]
    return switches


def test_no_flapping_on_alternating_good_and_bad_days() -> None:
    alternating = [BAD if i % 2 == 0 else GOOD for i in range(40)]
    assert simulate(alternating) == [(day(2), STRICT, day(0))]  # in once, and it stays strict
    assert simulate([GOOD if i % 2 == 0 else BAD for i in range(40)]) == [(day(3), STRICT, day(1))]
    # One bad day every third day: never two in a window of three, never switches.
    assert simulate([BAD if i % 3 == 0 else GOOD for i in range(40)]) == []


def test_a_bad_stretch_switches_once_each_way() -> None:
    values = [GOOD] * 5 + [BAD] * 4 + [GOOD] * 10
    assert simulate(values) == [(day(6), STRICT, day(5)), (day(11), STANDARD, day(12))]


def test_policy_is_validated_and_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ({"k": 4, "n": 3}, {"k": 0}, {"m": 0}, {"threshold": 1.5}):
        with pytest.raises(ValueError):
            FeedbackPolicy(**bad)  # type: ignore[arg-type]
    for name in POLICY_ENV:
        monkeypatch.delenv(name, raising=False)
    assert FeedbackPolicy.from_env() == FeedbackPolicy()
    monkeypatch.setenv("INTELLIGENCE_REROUTE_K", "1")
    monkeypatch.setenv("INTELLIGENCE_REROUTE_N", "1")
    monkeypatch.setenv("INTELLIGENCE_RECOVER_M", "5")
    monkeypatch.setenv("INTELLIGENCE_REROUTE_THRESHOLD", "0.2")
    assert FeedbackPolicy.from_env() == FeedbackPolicy(k=1, n=1, m=5, threshold=0.2)


def test_the_route_of_a_partition_is_the_latest_switch_effective_on_or_before_it() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    routes = pl.DataFrame(
        {
            "source": ["social", "social", "ads"],
            "route": [STRICT, STANDARD, STRICT],
            "changed_at": [at, at + dt.timedelta(hours=1), at + dt.timedelta(hours=2)],
            "effective_from": [day(2), day(7), day(20)],
            "reason": ["r1", "r2", "r3"],
            "evidence": ["{}", "{}", "{}"],
        }
    )
    assert [route_on(routes, "social", day(i)) for i in range(9)] == [STANDARD] * 2 + [STRICT] * 5 + [STANDARD] * 2
    assert strict_days(routes, "social", [day(i) for i in range(9)]) == {day(i) for i in range(2, 7)}
    assert current_route(routes, "social") == (STANDARD, day(7))
    assert current_route(routes, "ads") == (STRICT, day(20))
    assert current_route(routes, "crm") == (STANDARD, None)

    frame = pl.LazyFrame({"landing_date": [day(1), day(2)], "x": ["std1", "std2"]})
    strict = pl.LazyFrame({"landing_date": [day(1), day(2)], "x": ["strict1", "strict2"]})
    chosen = select_routed(frame, strict, [day(2)]).collect().sort("landing_date")
    assert chosen["x"].to_list() == ["std1", "strict2"]


# -- the source-health sensor end to end, in process -----------------------------------------------------

DAYS = 8
FLAKY_DAYS = (2, 3)  # social goes bad on day 2 and 3 (0-based), then recovers
QUIET_DEFECTS = DefectRates(duplicate=0.004, null=0.004, malformed=0.002, out_of_range=0.001)


@dataclass
class Loop:
    config: Settings
    instance: dg.DagsterInstance
    resources: dict[str, Any]
    landing: dict[dt.date, list[dg.RunRequest]] = field(default_factory=dict)
    health: dict[dt.date, Any] = field(default_factory=dict)  # the tick after each day's runs
    extra: list[Any] = field(default_factory=list)  # ticks with nothing new
    reroute_runs: list[tuple[dg.RunRequest, dg.ExecuteInProcessResult]] = field(default_factory=list)
    launched: set[str] = field(default_factory=set)  # run keys, as the daemon deduplicates them
    final_touchpoints: dg.ExecuteInProcessResult | None = None


def _assets() -> list[dg.AssetsDefinition]:
    return [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]


def _tick(sensor: Any, loop: Loop, cursor: str | None = None) -> Any:
    context = dg.build_sensor_context(instance=loop.instance, cursor=cursor, definitions=defs, resources=loop.resources)
    data = sensor.evaluate_tick(context)
    for event in data.asset_events:  # what the daemon does with a tick's asset events
        loop.instance.report_runless_asset_event(event)
    return data


def _materialize(loop: Loop, keys: set[dg.AssetKey], **kwargs: Any) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        _assets(),
        selection=dg.AssetSelection.assets(*keys),
        instance=loop.instance,
        resources=loop.resources,
        run_config=QUIET,
        raise_on_error=False,
        **kwargs,
    )
    failures = [f"{e.step_key}: {e.step_failure_data.error}" for e in result.get_step_failure_events()]
    assert result.success, failures
    return result


def _land_day(staging: Path, landing: Path, when: dt.date) -> None:
    """Move one day's folders into the landing zone, as an uploader would (settled, old mtimes)."""
    old = time.time() - 60
    for source in MARKETING_SOURCES:
        target = landing / source / when.isoformat()
        shutil.copytree(staging / source / when.isoformat(), target)
        for path in [*target.iterdir(), target]:
            os.utime(path, (old, old))


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    root = tmp_path_factory.mktemp("feedback")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTELLIGENCE_HOME", str(root / "home"))
        for name in (*POLICY_ENV, WEBHOOK_ENV):
            mp.delenv(name, raising=False)
        config = Settings.from_env()
        generate_marketing(
            GeneratorConfig(
                start=START,
                days=DAYS,
                people=400,
                seed=3,
                defects=QUIET_DEFECTS,
                flaky_days=FLAKY_DAYS,
                flaky_defect_rate=0.5,
            ),
            landing_root=root / "staging",
            truth_root=config.truth,
        )
        config.landing.mkdir(parents=True)
        # An ephemeral (in-memory) instance: the same storage API the sensors read, and the ten runs
        # here take a third of the time they take on SQLite files.
        with dg.DagsterInstance.ephemeral() as instance:
            state = Loop(config=config, instance=instance, resources=build_resources(config))
            cursor = None
            for i in range(DAYS):
                today = day(i)
                _land_day(root / "staging", config.landing, today)
                landing = _tick(landing_sensor, state, cursor)
                cursor = landing.cursor
                state.landing[today] = list(landing.run_requests)
                assert {r.partition_key for r in landing.run_requests} == {today.isoformat()}
                # Each day's requested runs (raw + cleansed of every source) as one run.
                _materialize(
                    state,
                    {k for r in landing.run_requests for k in r.asset_selection or []},
                    partition_key=today.isoformat(),
                )
                health = _tick(source_health_sensor, state)
                state.health[today] = health
                for request in health.run_requests:
                    if request.run_key in state.launched:
                        continue  # the daemon launches a run key once; the sensor may repeat it
                    state.launched.add(request.run_key or "")
                    result = _materialize(state, set(request.asset_selection or []), tags=request.tags)
                    state.reroute_runs.append((request, result))
                state.extra.append(_tick(source_health_sensor, state))  # nothing new: must not act again
            state.extra += [_tick(source_health_sensor, state) for _ in range(2)]
            # Touchpoints for the whole stretch, the way a monthly backfill would build them.
            state.final_touchpoints = _materialize(
                state,
                {dg.AssetKey(["marketing", "touchpoints"]), dg.AssetKey(["marketing", "touchpoints_quarantine"])},
                tags={
                    "dagster/asset_partition_range_start": day(0).isoformat(),
                    "dagster/asset_partition_range_end": day(DAYS - 1).isoformat(),
                },
            )
            yield state


def _routes(loop: Loop) -> pl.DataFrame:
    return load_routes(Warehouse(path=str(loop.config.warehouse)))


def _acted(loop: Loop) -> list[dt.date]:
    """The days after which the health tick switched a route (it then materializes the routing asset)."""
    return [d for d, tick in loop.health.items() if tick.asset_events]


def test_the_flaky_source_switches_to_strict_and_back_and_healthy_sources_never_switch(loop: Loop) -> None:
    routes = _routes(loop)
    rows = [(r["source"], r["route"], r["effective_from"]) for r in routes.iter_rows(named=True)]
    assert rows == [("social", STRICT, day(2)), ("social", STANDARD, day(7))], routes
    strict_row, back_row = routes.row(0, named=True), routes.row(1, named=True)
    assert "2 of the last 3 partitions above the 10% error rate" in strict_row["reason"]
    evidence = json.loads(strict_row["evidence"])
    assert evidence["k"] == 2 and evidence["n"] == 3
    assert {d for d, rate in evidence["standard_error_rates"].items() if rate > 0.10} == {
        day(2).isoformat(),
        day(3).isoformat(),
    }
    assert "3 consecutive clean partitions" in back_row["reason"]
    assert list(json.loads(back_row["evidence"])["strict_error_rates"]) == [day(i).isoformat() for i in (4, 5, 6)]
    # Acted exactly at the tick after day 3 (k of n reached) and after day 6 (m clean on strict).
    assert _acted(loop) == [day(3), day(6)]
    # Ticks with nothing new record nothing and request no run the daemon has not launched already.
    assert all(not tick.asset_events for tick in loop.extra)
    assert all(r.run_key in loop.launched for tick in loop.extra for r in tick.run_requests or [])


def test_a_switch_reruns_the_affected_partitions_through_strict_and_downstream(loop: Loop) -> None:
    assert len(loop.reroute_runs) == 1
    request, result = loop.reroute_runs[0]
    assert request.tags[REROUTE_TAG] == "social"
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        day(2).isoformat(),
        day(3).isoformat(),
    )
    selected = {k.to_user_string() for k in request.asset_selection or []}
    assert {"marketing/strict_cleansed_social", "marketing/touchpoints"} <= selected
    assert result.success
    # While social is on the strict route, its new days land through both paths; after, standard only.
    for i in range(DAYS):
        social = [r for r in loop.landing[day(i)] if "raw_social" in {k.path[-1] for k in r.asset_selection or []}]
        assert len(social) == 1
        on_strict = "strict_cleansed_social" in {k.path[-1] for k in social[0].asset_selection or []}
        assert on_strict == (i in (4, 5, 6)), day(i)
    strict_key = dg.AssetKey(["marketing", "strict_cleansed_social"])
    assert sorted(loop.instance.get_materialized_partitions(strict_key)) == [day(i).isoformat() for i in range(2, 7)]
    for source in MARKETING_SOURCES:
        if source != "social":
            key = dg.AssetKey(["marketing", f"strict_cleansed_{source}"])
            assert not loop.instance.get_materialized_partitions(key), source


def test_one_alert_per_switch_in_the_table_and_the_jsonl(loop: Loop) -> None:
    with Warehouse(path=str(loop.config.warehouse)).read() as con:
        alerts = con.sql(
            "select key, kind, severity, occurrences, resolved_at is not null as resolved, details from alerts "
            "order by raised_at"
        ).pl()
    assert alerts.select("key", "kind", "severity", "occurrences", "resolved").rows() == [
        ("reroute:social:strict", "reroute", "warning", 1, True),  # resolved when social came back
        ("reroute:social:standard", "reroute", "info", 1, False),
    ]
    details = json.loads(alerts["details"][0])
    assert details["source"] == "social" and "standard_error_rates" in details["evidence"]
    lines = (loop.config.home / "alerts" / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["reroute:social:strict", "reroute:social:standard"]


def test_the_routing_history_is_an_asset_with_a_materialization_per_switch(loop: Loop) -> None:
    records = loop.instance.fetch_materializations(ROUTING_KEY, limit=10, ascending=True).records
    events = [r.asset_materialization for r in records]
    assert [(e.metadata["source"].value, e.metadata["route"].value) for e in events if e] == [
        ("social", STRICT),
        ("social", STANDARD),
    ]
    last = events[-1]
    assert last is not None
    assert "2 of the last 3" in last.metadata["history"].value  # the whole history, shown in the UI
    assert last.metadata["evidence"].value["m"] == 3


def _touchpoints_materializations(result: dg.ExecuteInProcessResult) -> list[dg.AssetMaterialization]:
    key = dg.AssetKey(["marketing", "touchpoints"])
    return [e.materialization for e in result.get_asset_materialization_events() if e.asset_key == key]


def test_touchpoints_read_each_partition_from_the_route_it_took(loop: Loop) -> None:
    rerouted = _touchpoints_materializations(loop.reroute_runs[0][1])
    assert len(rerouted) == 2
    assert {m.metadata["strict_days_social"].value for m in rerouted} == {f"{day(2)}, {day(3)}"}
    assert loop.final_touchpoints is not None
    final = _touchpoints_materializations(loop.final_touchpoints)
    assert {m.metadata["strict_days_social"].value for m in final} == {", ".join(str(day(i)) for i in range(2, 7))}
    assert not any(k.startswith("strict_days_") and k != "strict_days_social" for m in final for k in m.metadata)

    # The rows: social touches of strict days are exactly the strict path's accepted touches.
    lake = loop.config.lake / "marketing"
    touches = pl.read_parquet(lake / "touchpoints" / "*.parquet").filter(pl.col("event_key").str.starts_with("social:"))
    touched = touches.with_columns(pl.col("event_key").str.strip_prefix("social:").alias("event_id"))

    def accepted(asset: str) -> pl.DataFrame:
        return pl.read_parquet(lake / asset / "*.parquet")

    def touches(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("event_type").cast(pl.String).is_in(["engagement", "click"]))

    strict, standard = accepted("strict_cleansed_social"), accepted("cleansed_social")
    for i in range(DAYS):
        on_day = set(touched.filter(pl.col("landing_date") == day(i))["event_id"])
        expected = touches(strict if 2 <= i <= 6 else standard)
        assert on_day == set(expected.filter(pl.col("landing_date") == day(i))["event_id"]), day(i)
    # The routes differ where it matters: the strict path refused rows the standard path let through
    # (e.g. timestamps five years in the future).
    on_strict_days = standard.filter(pl.col("landing_date").is_between(day(2), day(6)))
    assert on_strict_days.join(strict, on="event_id", how="anti").height > 0


# -- alerts --------------------------------------------------------------------------------------------------


@pytest.fixture
def sink(home: Settings) -> AlertSink:
    return AlertSink(warehouse_path=str(home.warehouse), jsonl_path=str(home.home / "alerts" / "alerts.jsonl"))


def _alert_rows(sink: AlertSink) -> list[dict[str, Any]]:
    with Warehouse(path=sink.warehouse_path).read() as con:
        return con.sql("select * from alerts order by raised_at").pl().to_dicts()


def test_a_repeated_alert_inside_the_cooldown_is_counted_not_repeated(sink: AlertSink) -> None:
    now = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    first = sink.raise_alert(key="run_failure:marketing/raw_ads", kind="run_failure", message="boom", now=now)
    again = [
        sink.raise_alert(
            key="run_failure:marketing/raw_ads", kind="run_failure", message="boom", now=now + dt.timedelta(hours=h)
        )
        for h in (1, 2)
    ]
    assert first.new and not any(a.new for a in again)
    assert [a.occurrences for a in again] == [2, 3] and {a.alert_id for a in again} == {first.alert_id}
    other = sink.raise_alert(key="run_failure:marketing/raw_web", kind="run_failure", message="other", now=now)
    assert other.new
    rows = _alert_rows(sink)
    assert [(r["key"], r["occurrences"]) for r in rows] == [
        ("run_failure:marketing/raw_ads", 3),
        ("run_failure:marketing/raw_web", 1),
    ]
    assert len(Path(sink.jsonl_path).read_text().splitlines()) == 2

    # After the cooldown, or once resolved, the same key is a new alert.
    later = sink.raise_alert(
        key="run_failure:marketing/raw_ads", kind="run_failure", message="boom", now=now + dt.timedelta(days=2)
    )
    assert later.new and later.alert_id != first.alert_id
    assert sink.resolve("run_failure:marketing/raw_web") == 1
    reopened = sink.raise_alert(key="run_failure:marketing/raw_web", kind="run_failure", message="x", now=now)
    assert reopened.new
    assert len(Path(sink.jsonl_path).read_text().splitlines()) == 4


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(  # type: ignore[attr-defined]
            {"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)}
        )
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T0KEN-SECRET", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_a_new_alert_is_posted_to_the_webhook_once(sink: AlertSink, webhook: tuple[str, list[Any]]) -> None:
    url, received = webhook
    hooked = AlertSink(warehouse_path=sink.warehouse_path, jsonl_path=sink.jsonl_path, webhook_url=url)
    alert = hooked.raise_alert(
        key="reroute:social:strict", kind="reroute", severity="warning", message="social → strict", details={"k": 2}
    )
    hooked.raise_alert(key="reroute:social:strict", kind="reroute", severity="warning", message="social → strict")
    assert len(received) == 1
    post = received[0]
    assert post["path"] == "/hooks/T0KEN-SECRET" and post["type"] == "application/json"
    assert post["body"]["text"] == "[warning] social → strict"
    assert post["body"]["alert"]["alert_id"] == alert.alert_id
    assert post["body"]["alert"]["details"] == {"k": 2}


def test_a_dead_webhook_never_breaks_the_caller_nor_leaks_its_url(
    sink: AlertSink, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/T0KEN-SECRET"  # nobody listens there
    dead = AlertSink(
        warehouse_path=sink.warehouse_path, jsonl_path=sink.jsonl_path, webhook_url=url, webhook_timeout_seconds=2.0
    )
    logger = logging.getLogger("test_feedback_loop.alerts")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        alert = dead.raise_alert(key="k", kind="test", message="still recorded", log=logger)
    assert alert.new and [r["key"] for r in _alert_rows(sink)] == ["k"]
    assert any("webhook did not accept" in r.getMessage() for r in caplog.records)
    assert not any("T0KEN" in r.getMessage() or "127.0.0.1" in r.getMessage() for r in caplog.records)


def test_the_webhook_url_from_an_env_var_stays_out_of_config_and_snapshots(
    home: Settings, monkeypatch: pytest.MonkeyPatch, webhook: tuple[str, list[Any]]
) -> None:
    url, received = webhook
    monkeypatch.setenv(WEBHOOK_ENV, url)
    resources = build_resources(home)
    sink = resources["alerts"]
    assert sink._convert_to_config_dictionary()["webhook_url"] == {"env": WEBHOOK_ENV}
    snapshot = serialize_value(RepositorySnap.from_def(dg.Definitions(resources=resources).get_repository_def()))
    assert WEBHOOK_ENV in snapshot and "T0KEN" not in snapshot and url not in snapshot
    # The value is resolved at run time: a sensor given these resources reaches the webhook.
    with dg.instance_for_test() as instance:
        _fail_twice_and_alert(instance, resources, runs=1)
    assert len(received) == 1 and received[0]["body"]["alert"]["kind"] == "run_failure"


# -- the run-failure alert sensor --------------------------------------------------------------------------------


@dg.asset(key=["marketing", "always_fails"])
def always_fails() -> None:
    """A connector whose source is down."""
    raise RuntimeError("the source API answered 503")


@dg.asset(key=["marketing", "also_fails"])
def also_fails() -> None:
    """Another connector, down too."""
    raise RuntimeError("connection reset")


def _fail_twice_and_alert(
    instance: dg.DagsterInstance, resources: dict[str, Any], runs: int = 2, asset: dg.AssetsDefinition = always_fails
) -> list[Any]:
    outcomes = []
    for _ in range(runs):
        result = dg.materialize([asset], instance=instance, raise_on_error=False, run_config=QUIET)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=run,
            resources=resources,
        ).for_run_failure()
        outcomes.append(run_failure_alert_sensor(context))
    return outcomes


def test_two_failures_of_the_same_asset_make_one_alert_counted_twice(
    home: Settings, instance: dg.DagsterInstance
) -> None:
    resources = build_resources(home)
    _fail_twice_and_alert(instance, resources, runs=2)
    rows = _alert_rows(resources["alerts"])
    # An in-process run has no asset selection: the alert is named by the failed step.
    assert [(r["key"], r["kind"], r["occurrences"]) for r in rows] == [
        ("run_failure:marketing__always_fails", "run_failure", 2)
    ]
    assert "failed" in rows[0]["message"]
    assert json.loads(rows[0]["details"])["assets"] == ["marketing__always_fails"]
    assert len((home.home / "alerts" / "alerts.jsonl").read_text().splitlines()) == 1

    # Another asset failing in the same (whole-job) way is another alert, not a repeat of this one.
    _fail_twice_and_alert(instance, resources, runs=1, asset=also_fails)
    assert [(r["key"], r["occurrences"]) for r in _alert_rows(resources["alerts"])] == [
        ("run_failure:marketing__always_fails", 2),
        ("run_failure:marketing__also_fails", 1),
    ]
