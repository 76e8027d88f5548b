"""The seeded telemetry generator: determinism, layout, labels, timestamp forms, defects, no overwrite."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from assets.telemetry.windowed_scoring import load_labels
from intelligence.synthetic.telemetry import (
    CLOUD_KINDS,
    CORE_METRICS,
    GENERIC_METRIC,
    PATTERNS,
    CloudConfig,
    TelemetryConfig,
    generate_telemetry,
    main,
    simulate_cloud_streams,
    simulate_telemetry,
)

SMALL = TelemetryConfig(seed=5, hosts=3, days=6, incidents_per_host=2.0, warmup_days=2.0)


def parse_stamp(text: str) -> dt.datetime:
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text), tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(text)
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def test_simulation_is_deterministic_for_a_seed() -> None:
    a = simulate_telemetry(SMALL)
    b = simulate_telemetry(SMALL)
    assert a.points.equals(b.points)
    assert a.incidents == b.incidents
    assert a.labels == b.labels
    other = simulate_telemetry(replace(SMALL, seed=6))
    assert not other.points.equals(a.points)


def test_points_shape_metrics_and_cadence() -> None:
    sim = simulate_telemetry(SMALL)
    pts = sim.points
    assert pts.schema == {
        "host": pl.String,
        "metric": pl.String,
        "timestamp": pl.Datetime("us", "UTC"),
        "value": pl.Float64,
    }
    assert set(pts["metric"].unique()) == {*CORE_METRICS, GENERIC_METRIC}
    assert pts["host"].n_unique() == 3
    assert pts.select("host", "metric", "timestamp").is_unique().all()
    assert pts.equals(pts.sort("host", "metric", "timestamp"))
    per_stream = pts.group_by("host", "metric").len()["len"].to_numpy()
    full = 6 * 288
    assert per_stream.max() <= full
    assert per_stream.min() > full * 0.7  # gaps and stopped streams remove some points
    assert pts["value"].is_finite().all()
    cpu = pts.filter(pl.col("metric") == "cpu")["value"].to_numpy()
    assert cpu.min() >= 0 and cpu.max() <= 100
    counts = pts.filter(pl.col("metric").is_in(["errors", "requests"]))["value"]
    assert (counts == counts.round(0)).all()


@pytest.mark.parametrize(("cadence", "days"), [(60, 2), (3600, 20)])
def test_other_cadences(cadence: int, days: int) -> None:
    sim = simulate_telemetry(TelemetryConfig(seed=1, hosts=2, days=days, cadence_seconds=cadence, warmup_days=1.0))
    steps = sim.points.filter((pl.col("host") == "host-00") & (pl.col("metric") == "cpu"))["timestamp"].diff()
    assert steps.drop_nulls().mode().item() == dt.timedelta(seconds=cadence)


def test_incidents_cover_every_pattern_and_label_their_windows() -> None:
    sim = simulate_telemetry(TelemetryConfig(seed=11, hosts=12, days=14, incidents_per_host=3.0))
    assert {i.pattern for i in sim.incidents} == set(PATTERNS)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for inc in sim.incidents:
        assert inc.start >= start + dt.timedelta(days=3)  # warm-up
        assert inc.end <= start + dt.timedelta(days=14)
        for metric, window in inc.windows.items():
            assert window in sim.labels[f"{inc.host}/{metric}"]
            assert window[0] < window[1]
    by_host: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for inc in sim.incidents:
        by_host.setdefault(inc.host, []).append((inc.start, inc.end))
    for spans in by_host.values():  # never overlapping on one host
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert any(i.subtle for i in sim.incidents) and any(not i.subtle for i in sim.incidents)


def test_incident_effects_are_visible_in_the_data() -> None:
    sim = simulate_telemetry(TelemetryConfig(seed=3, hosts=10, days=10, incidents_per_host=2.0, subtle_share=0.0))
    pts = sim.points
    checked = 0
    for inc in sim.incidents:
        if inc.pattern not in ("cpu_saturation", "traffic_surge", "service_degradation"):
            continue
        metric = {"cpu_saturation": "cpu", "traffic_surge": "requests", "service_degradation": "latency"}[inc.pattern]
        a, b = inc.windows[metric]
        stream = pts.filter((pl.col("host") == inc.host) & (pl.col("metric") == metric))
        inside = stream.filter(pl.col("timestamp").is_between(a, b))["value"]
        before = stream.filter(pl.col("timestamp").is_between(a - dt.timedelta(days=1), a - dt.timedelta(hours=1)))
        if inside.len() == 0:
            continue
        assert inside.max() > before["value"].quantile(0.5)  # type: ignore[operator]
        checked += 1
    assert checked >= 3


def test_generate_writes_the_landing_layout_labels_and_truth(tmp_path: Path) -> None:
    cfg = replace(SMALL, alt_timestamp_share=0.3)
    summary = generate_telemetry(cfg, tmp_path / "landing", tmp_path / "truth")
    sim = simulate_telemetry(cfg)
    files = sorted((tmp_path / "landing" / "telemetry").rglob("*.csv"))
    assert summary.files_written == len(files) == 3 * 6 * 6  # hosts x metrics x days
    assert summary.files_skipped_existing == 0
    assert summary.points == sim.points.height == summary.rows_written
    sample = files[0]
    host, metric, day = sample.parts[-3], sample.parts[-2], sample.stem
    lines = sample.read_text().splitlines()
    assert lines[0] == "timestamp,value"
    stamps = [line.split(",")[0] for line in lines[1:]]
    assert any(s.endswith("Z") for s in stamps)
    assert any(not s.endswith("Z") for s in stamps)  # offsets, naive or epoch forms
    parsed = [parse_stamp(s) for s in stamps]
    expected = sim.points.filter(
        (pl.col("host") == host)
        & (pl.col("metric") == metric)
        & (pl.col("timestamp").dt.date() == dt.date.fromisoformat(day))
    )
    assert parsed == expected["timestamp"].to_list()
    values = [float(line.split(",")[1]) for line in lines[1:]]
    assert values == pytest.approx(expected["value"].to_list(), rel=1e-5)

    labels = load_labels(tmp_path / "landing" / "telemetry_labels")
    assert labels == sim.labels
    raw = json.loads(Path(summary.labels_path).read_text())
    assert all(isinstance(w, list) and len(w) == 2 for v in raw.values() for w in v)
    truth = json.loads(Path(summary.truth_path).read_text())
    assert len(truth["incidents"]) == len(sim.incidents)
    first = truth["incidents"][0]
    assert {"host", "pattern", "start", "end", "metrics", "windows", "severity", "subtle"} <= set(first)


def test_existing_landing_files_are_never_overwritten(tmp_path: Path) -> None:
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    generate_telemetry(SMALL, landing, truth)
    victim = next((landing / "telemetry").rglob("*.csv"))
    victim.write_text("timestamp,value\nmine\n")
    labels = landing / "telemetry_labels" / "incidents.json"
    labels.write_text("{}")
    again = generate_telemetry(replace(SMALL, seed=99), landing, truth)
    assert again.files_written == 0
    assert again.files_skipped_existing == 3 * 6 * 6
    assert not again.labels_written
    assert victim.read_text() == "timestamp,value\nmine\n"
    assert labels.read_text() == "{}"
    assert again.notes


def test_defects_appear_when_asked(tmp_path: Path) -> None:
    cfg = replace(
        SMALL,
        hosts=1,
        duplicate_share=0.05,
        out_of_order_share=0.05,
        non_numeric_share=0.05,
        blank_share=0.05,
    )
    generate_telemetry(cfg, tmp_path / "landing", tmp_path / "truth")
    rows = []
    for path in (tmp_path / "landing" / "telemetry").rglob("*.csv"):
        rows += path.read_text().splitlines()[1:]
    values = [r.split(",", 1)[1] for r in rows]
    assert any(v == "" for v in values)
    assert any(v in ("n/a", "ERR", "#VALUE!", "null?") for v in values)
    assert len(rows) > len(set(rows))  # duplicated rows
    one = sorted((tmp_path / "landing" / "telemetry" / "host-00" / "cpu").glob("*.csv"))[2]
    stamps = [parse_stamp(line.split(",")[0]) for line in one.read_text().splitlines()[1:]]
    assert stamps != sorted(stamps)  # out-of-order rows


def test_cli_writes_under_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path), "--hosts", "2", "--days", "4", "--seed", "3", "--cadence", "3600"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files_written"] == 2 * 6 * 4
    assert (tmp_path / "landing" / "telemetry_labels" / "incidents.json").exists()
    assert (tmp_path / "truth" / "telemetry" / "incidents.json").exists()


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="cadence"):
        TelemetryConfig(cadence_seconds=0)
    with pytest.raises(ValueError, match="blank_share"):
        TelemetryConfig(blank_share=2.0)
    with pytest.raises(ValueError, match="labels_name"):
        TelemetryConfig(labels_name="../x")


def test_generator_imports_nothing_from_assets_or_resources() -> None:
    code = (
        "import sys, intelligence.synthetic.telemetry as m; "
        "bad = [k for k in sys.modules if k.split('.')[0] in ('assets', 'resources')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# --------------------------------------------------------------------------------------------------------------
# single-stream cloud corpus


def test_cloud_streams_are_deterministic_independent_and_labelled() -> None:
    cfg = CloudConfig(seed=7, streams=40)
    sim = simulate_cloud_streams(cfg)
    again = simulate_cloud_streams(cfg)
    assert sim.points.equals(again.points)
    assert sim.anomalies == again.anomalies
    assert not simulate_cloud_streams(replace(cfg, seed=8)).points.equals(sim.points)
    pts = sim.points
    assert pts.schema == {
        "host": pl.String,
        "metric": pl.String,
        "timestamp": pl.Datetime("us", "UTC"),
        "value": pl.Float64,
    }
    assert pts.equals(pts.sort("host", "metric", "timestamp"))
    assert pts.select("host", "metric", "timestamp").is_unique().all()
    assert pts["value"].is_finite().all()
    assert len(sim.labels) == 40 == pts.select("host", "metric").n_unique()
    assert set(pts["metric"].unique()) <= set(CLOUD_KINDS)
    assert sum(len(v) for v in sim.labels.values()) == len(sim.anomalies)
    starts = pts.group_by("host").agg(pl.col("timestamp").min())["timestamp"]
    assert starts.dt.hour().n_unique() > 3  # streams start at any time of day


def test_cloud_anomalies_sit_after_probation_a_window_apart() -> None:
    sim = simulate_cloud_streams(CloudConfig(seed=9, streams=60))
    counts = [len(v) for v in sim.labels.values()]
    assert max(counts) <= 4 and sum(c >= 1 for c in counts) >= 50
    spans = sim.points.group_by("host", "metric").agg(
        pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last")
    )
    for row in spans.iter_rows(named=True):
        onsets = sorted(a for a, _ in sim.labels[f"{row['host']}/{row['metric']}"])
        span = row["last"] - row["first"]
        for onset in onsets:
            assert onset - row["first"] >= 0.14 * span  # after NAB's probation (15 % of the rows)
        for a, b in itertools.pairwise(onsets):
            assert b - a >= 0.1 * span / len(onsets) * 0.9  # NAB windows of the stream do not overlap
    shapes = {a.shape for a in sim.anomalies}
    assert {"spike", "level_shift", "drop"} <= shapes
    assert any(a.subtle for a in sim.anomalies) and any(not a.subtle for a in sim.anomalies)


def test_cloud_streams_have_the_traits_of_real_metrics() -> None:
    sim = simulate_cloud_streams(CloudConfig(seed=10, streams=70))
    pts = sim.points
    counts = pts.filter(pl.col("metric").is_in(["request_count", "instance_count", "network_in"]))["value"]
    assert (counts == counts.round(0)).all() and (counts >= 0).all()
    cpu = pts.filter(pl.col("metric") == "cpu_utilization")["value"]
    assert cpu.min() >= 0 and cpu.max() <= 100  # type: ignore[operator]
    per_stream = pts.group_by("host", "metric").agg(
        pl.len().alias("n"),
        (pl.col("value").diff() == 0).mean().alias("flat"),
        (pl.col("value").quantile(0.999) / pl.col("value").median()).alias("tail"),
    )
    assert per_stream["n"].min() >= 14 * 288 * 0.9  # type: ignore[operator]  # two weeks at 5 min or longer
    assert (per_stream["flat"] > 0.5).sum() >= 3  # step-like or quantised streams with long flat runs
    assert (per_stream["tail"] > 5).sum() >= 3  # heavy-tailed ones


def test_cloud_config_validation() -> None:
    with pytest.raises(ValueError, match="cadence"):
        CloudConfig(cadence_seconds=0)
    with pytest.raises(ValueError, match="subtle_share"):
        CloudConfig(subtle_share=1.5)
