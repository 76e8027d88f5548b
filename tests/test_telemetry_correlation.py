"""Health, episodes and incidents as pure functions: hand-built streams with known answers, and the labelled corpus."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from assets.telemetry import anomaly_scores
from assets.telemetry.anomaly_events import find_episodes, latest_versions
from assets.telemetry.detectors import score_points
from assets.telemetry.health_events import build_health_events
from assets.telemetry.incidents import correlate, find_incidents, latest_incidents
from intelligence.synthetic.telemetry import TelemetryConfig, simulate_telemetry

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DAY1, DAY2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)


def scores(rows: list[tuple[str, str, dt.datetime, float, float]]) -> pl.DataFrame:
    """Score rows (host, metric, timestamp, deviation, anomaly_score) with a baseline of 100 and a scale of 1."""
    frame = pl.DataFrame(
        {
            "host": [r[0] for r in rows],
            "metric": [r[1] for r in rows],
            "timestamp": [r[2] for r in rows],
            "deviation": [r[3] for r in rows],
            "anomaly_score": [r[4] for r in rows],
        },
        schema={
            "host": pl.String,
            "metric": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "deviation": pl.Float64,
            "anomaly_score": pl.Float64,
        },
    )
    return frame.with_columns(
        (100.0 + pl.col("deviation")).alias("value"),
        pl.lit(100.0).alias("baseline"),
        pl.lit(1.0).alias("scale"),
        pl.when(pl.col("anomaly_score") > 0).then(pl.lit("spike")).alias("reason"),
        pl.col("timestamp").dt.date().alias("day"),
    )


def stream(host: str, metric: str, start: dt.datetime, hours: float, bumps: dict[int, tuple[float, float]]) -> list:
    """A 5-minute stream; `bumps` maps a point index to (deviation, score)."""
    n = int(hours * 12)
    return [(host, metric, start + dt.timedelta(minutes=5 * i), *bumps.get(i, (0.0, 0.0))) for i in range(n)]


def test_health_states_follow_the_deviation_median_and_the_largest_score() -> None:
    bumps = {0: (9.0, 0.0), 1: (9.0, 0.0), 2: (9.0, 0.0), 3: (5.0, 0.0), 4: (5.0, 0.0), 6: (0.0, 0.9)}
    rows = stream("h", "latency", T0, 1, bumps)
    rows += stream("h", "latency", T0 + dt.timedelta(hours=1), 0.25, {0: (-20.0, 0.0), 1: (-20.0, 0.0)})
    health = build_health_events(scores(rows))
    assert health["state"].cast(pl.String).to_list() == ["critical", "warn", "critical", "ok", "warn"]
    assert health["deviation"].to_list()[:2] == [9.0, 5.0]
    assert health["points"].to_list() == [3, 3, 3, 3, 3]
    # latency going down counts 0.3: 20 noise units below the baseline is only a warning
    assert health["severity"].to_list()[-1] == pytest.approx(6.0)


def test_an_episode_keeps_its_elevated_tail_and_merges_within_the_gap_tolerance() -> None:
    bumps = {12: (6.0, 0.7), 13: (6.0, 0.0), 14: (6.0, 0.0), 18: (5.0, 0.6), 30: (1.0, 0.0), 40: (0.0, 0.8)}
    events = find_episodes(scores(stream("h", "cpu", T0, 6, bumps)), [DAY1])
    got = [(e["start"].strftime("%H:%M"), e["end"].strftime("%H:%M"), e["core_points"]) for e in events.to_dicts()]
    # 01:00 and 01:30 are 20 min apart after the tail (01:10): one episode; 03:20 is another
    assert got == [("01:00", "01:30", 2), ("03:20", "03:20", 1)]
    assert events["severity_level"].cast(pl.String).to_list() == ["warn", "critical"]
    assert events["status"].cast(pl.String).to_list() == ["closed", "closed"]


def test_an_episode_crossing_midnight_is_open_in_the_first_day_and_complete_in_the_second() -> None:
    start = T0 + dt.timedelta(hours=23)
    bumps = {i: (7.0, 0.0) for i in range(10, 22)} | {10: (7.0, 0.75)}
    frame = scores(stream("h", "latency", start, 4, bumps))
    by_range = find_episodes(frame, [DAY1, DAY2])
    day_by_day = pl.concat(
        [
            find_episodes(frame.filter(pl.col("day") <= DAY1), [DAY1]),
            find_episodes(frame, [DAY2]),
        ]
    )
    assert by_range.equals(day_by_day)
    first, second = by_range.to_dicts()
    assert first["event_id"] == second["event_id"] == "h|latency|2024-01-01T23:50:00Z"
    assert (first["day"], first["status"], first["end"].strftime("%H:%M")) == (DAY1, "open", "23:55")
    assert (second["day"], second["status"], second["end"].strftime("%H:%M")) == (DAY2, "closed", "00:45")
    latest = latest_versions(by_range)
    assert latest.height == 1 and latest["end"].item() == second["end"]


def _evidence(host: str, metric: str, start: dt.datetime, minutes: int, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "_window": start.date(),
        "event_id": f"{host}|{metric}|{start:%H%M}",
        "kind": "anomaly",
        "host": host,
        "metric": metric,
        "start": start,
        "peak": start,
        "end": start + dt.timedelta(minutes=minutes),
        "status": "closed",
        "direction": "up",
        "peak_score": 0.8,
        "severity": 0.8,
        "reasons": "spike",
        "first_value": 50.0,
        "max_value": 50.0,
        "scale": 1.0,
    }
    row.update(extra)
    return row


def _patterns(rows: list[dict[str, object]]) -> list[tuple[str, str, str]]:
    from assets.telemetry.incidents import EVIDENCE_SCHEMA

    incidents = correlate(pl.DataFrame(rows, schema=EVIDENCE_SCHEMA))
    return [(r["pattern"], r["hosts"], r["scope"]) for r in incidents.sort("start", "hosts").iter_rows(named=True)]


@pytest.mark.parametrize(
    ("signals", "pattern"),
    [
        ([("latency", {}), ("errors", {})], "service_degradation"),
        ([("cpu", {}), ("latency", {})], "cpu_saturation"),
        ([("requests", {}), ("latency", {}), ("cpu", {})], "traffic_surge"),
        ([("memory", {"first_value": 40.0, "max_value": 80.0}), ("errors", {})], "memory_leak"),
        ([("disk_io", {"reasons": "flatline", "direction": "down"})], "silent_failure"),
        ([("latency", {})], "unclassified"),
        ([("disk_io", {})], "unclassified"),
    ],
)
def test_known_patterns_are_recognised_from_their_signals(signals: list, pattern: str) -> None:
    rows = [_evidence("h1", m, T0 + dt.timedelta(minutes=10 * i), 60, **extra) for i, (m, extra) in enumerate(signals)]
    assert _patterns(rows) == [(pattern, "h1", "host")]


def test_the_same_pattern_on_many_hosts_at_once_is_one_fleet_incident() -> None:
    rows = []
    for i, host in enumerate(["a", "b", "c", "d"]):
        start = T0 + dt.timedelta(minutes=5 * i)
        rows += [_evidence(host, "latency", start, 30), _evidence(host, "errors", start, 30)]
    rows.append(_evidence("e", "cpu", T0 + dt.timedelta(hours=5), 30))  # elsewhere, later: its own incident
    assert _patterns(rows) == [("service_degradation", "a,b,c,d", "fleet"), ("cpu_saturation", "e", "host")]
    two_hosts = [r for r in rows if r["host"] in ("a", "b")]
    assert [p[2] for p in _patterns(two_hosts)] == ["host", "host"]


def test_a_stream_that_stops_is_a_silent_failure_found_from_the_points() -> None:
    times = [T0 + dt.timedelta(minutes=5 * i) for i in range(24 * 12)]
    keep = [t for t in times if not (T0 + dt.timedelta(hours=10) <= t < T0 + dt.timedelta(hours=14))]
    pts = pl.DataFrame(
        {"host": "h", "metric": "requests", "timestamp": keep, "value": 1.0},
        schema={"host": pl.String, "metric": pl.String, "timestamp": pl.Datetime("us", "UTC"), "value": pl.Float64},
    ).with_columns(pl.col("timestamp").dt.date().alias("day"))
    other = pl.DataFrame({"timestamp": times}).with_columns(
        pl.lit("h").alias("host"), pl.lit("cpu").alias("metric"), pl.lit(1.0).alias("value")
    )
    other = other.select(pts.drop("day").columns).with_columns(pl.col("timestamp").dt.date().alias("day"))
    events = find_episodes(scores([]), [DAY1])
    found = latest_incidents(find_incidents(events.lazy(), pl.concat([pts, other]).lazy(), [DAY1]))
    assert found.height == 1
    row = found.row(0, named=True)
    assert (row["pattern"], row["hosts"], row["signals"]) == ("silent_failure", "h", "requests:down")
    assert (row["start"].hour, row["end"].hour) == (10, 14)
    assert row["confidence"] == pytest.approx(0.7)  # 0.3 + 0.1 per hour of silence


def test_each_injected_pattern_is_detected_and_classified_on_a_labelled_corpus() -> None:
    cfg = TelemetryConfig(seed=19, hosts=3, days=16, incidents_per_host=3.0)
    sim = simulate_telemetry(cfg)
    scored = score_points(sim.points).with_columns(pl.col("timestamp").dt.date().alias("day"))
    assert set(scored.columns) >= set(anomaly_scores.SCHEMA) - {"reason"}
    days = [cfg.start + dt.timedelta(days=i) for i in range(cfg.days)]
    points = sim.points.with_columns(pl.col("timestamp").dt.date().alias("day"))
    incidents = latest_incidents(find_incidents(find_episodes(scored, days).lazy(), points.lazy(), days))
    found = {}
    for truth in sim.incidents:
        near = incidents.filter(
            pl.col("hosts").str.contains(truth.host)
            & (pl.col("end") >= truth.start - dt.timedelta(minutes=30))
            & (pl.col("start") <= truth.end + dt.timedelta(hours=1))
        )
        found[(truth.host, truth.start)] = (truth.pattern, truth.pattern in near["pattern"].cast(pl.String).to_list())
    assert {p for p, _ in found.values()} == {
        "service_degradation",
        "cpu_saturation",
        "memory_leak",
        "traffic_surge",
        "silent_failure",
    }
    assert {p for p, ok in found.values() if ok} == {p for p, _ in found.values()}, found
    assert sum(ok for _, ok in found.values()) >= 0.8 * len(found), found
