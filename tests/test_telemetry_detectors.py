"""The causal anomaly-scoring ensemble: exact bounded lookback, causality, known answers, robustness."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.telemetry.detectors import COMPONENTS, LOOKBACK, OUTPUT_COLUMNS, score_points
from intelligence.synthetic.telemetry import TelemetryConfig, simulate_telemetry

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FIVE_MIN = dt.timedelta(minutes=5)
SCHEMA: dict[str, pl.DataType] = {
    "host": pl.String(),
    "metric": pl.String(),
    "timestamp": pl.Datetime("us", "UTC"),
    "value": pl.Float64(),
}


def stream(
    values: np.ndarray | list[float],
    metric: str = "m",
    host: str = "h",
    step: dt.timedelta = FIVE_MIN,
    times: list[dt.datetime] | None = None,
) -> pl.DataFrame:
    values = np.asarray(values, dtype=np.float64)
    stamps = times if times is not None else [T0 + i * step for i in range(values.size)]
    return pl.DataFrame(
        {"host": [host] * values.size, "metric": [metric] * values.size, "timestamp": stamps, "value": values},
        schema=SCHEMA,
    )


def daily_noise(days: int, seed: int = 0, level: float = 50.0, amp: float = 10.0, noise: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = days * 288
    hours = (np.arange(n) % 288) / 12.0
    return level + amp * np.sin(2 * np.pi * hours / 24.0) + rng.normal(0.0, noise, n)


def at(frame: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    return frame.filter(pl.col("timestamp").is_between(start, end, closed="left"))


def day(k: float) -> dt.datetime:
    return T0 + dt.timedelta(days=k)


def assert_same_scores(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.height == b.height
    for col in ("anomaly_score", "baseline", "deviation", "scale", *(f"score_{c}" for c in COMPONENTS)):
        x, y = a[col].to_numpy(), b[col].to_numpy()
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        assert same.all(), f"{col} differs on {int((~same).sum())} rows (max {np.nanmax(np.abs(x - y))})"
    assert a["reason"].to_list() == b["reason"].to_list()


# --------------------------------------------------------------------------------------------------------------
# contract


def test_output_keeps_rows_and_adds_documented_columns() -> None:
    pts = stream(daily_noise(3)).with_columns(pl.lit("x").alias("extra"))
    out = score_points(pts)
    assert out.columns == [*pts.columns, *OUTPUT_COLUMNS]
    assert out.select(pts.columns).equals(pts)
    assert out.schema["anomaly_score"] == pl.Float64
    assert out.schema["reason"] == pl.String
    assert dt.timedelta(days=14) == LOOKBACK


def test_empty_input_gives_empty_output() -> None:
    out = score_points(pl.DataFrame(schema=SCHEMA))
    assert out.height == 0
    assert out.columns == [*SCHEMA, *OUTPUT_COLUMNS]


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="value"):
        score_points(stream([1.0]).drop("value"))
    with pytest.raises(ValueError, match="Datetime"):
        score_points(stream([1.0]).with_columns(pl.col("timestamp").cast(pl.String)))


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.floats(-1e9, 1e9, allow_nan=False), st.just(float("nan")), st.sampled_from([0.0, 1.0])),
        min_size=1,
        max_size=400,
    ),
    steps=st.lists(st.integers(1, 7200), min_size=1, max_size=400),
)
def test_scores_stay_in_the_unit_interval(values: list[float], steps: list[int]) -> None:
    n = len(values)
    seconds = np.cumsum([steps[i % len(steps)] for i in range(n)]) * 60
    times = [T0 + dt.timedelta(seconds=int(s)) for s in seconds]
    out = score_points(stream(values, times=times))
    for col in ("anomaly_score", *(f"score_{c}" for c in COMPONENTS)):
        s = out[col].to_numpy()
        assert np.isfinite(s).all() and (s >= 0).all() and (s <= 1).all(), col


# --------------------------------------------------------------------------------------------------------------
# causality and the bounded lookback


def random_streams(seed: int, days: int) -> pl.DataFrame:
    """Three streams with daily cycles, spikes, shifts, flat runs, gaps and irregular spacing."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, metric in enumerate(("latency", "cpu", "custom_metric")):
        n = days * 288
        v = daily_noise(days, seed=seed + k, noise=1.0 + k)
        v[rng.integers(0, n, 20)] += rng.normal(0, 25, 20)  # spikes
        v[rng.integers(n // 2, n) :] += 15.0  # a level shift
        flat = int(rng.integers(0, n - 60))
        v[flat : flat + 60] = v[flat]  # a stuck value
        if k == 2:
            v = np.round(v)
        keep = rng.random(n) > 0.05
        gap = int(rng.integers(0, n - 200))
        keep[gap : gap + int(rng.integers(10, 200))] = False  # a gap of up to 16 h
        jitter = rng.integers(-60, 60, n)
        times = [T0 + i * FIVE_MIN + dt.timedelta(seconds=int(j)) for i, j in zip(range(n), jitter, strict=True)]
        frame = stream(v, metric=metric, times=times).filter(pl.Series(keep))
        frames.append(frame)
    return pl.concat(frames)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.floats(0.1, 0.95))
def test_appending_future_points_never_changes_past_scores(seed: int, cut: float) -> None:
    pts = random_streams(seed, days=10)
    full = score_points(pts)
    cut_at = day(10 * cut)
    prefix = score_points(pts.filter(pl.col("timestamp") <= cut_at))
    assert_same_scores(full.filter(pl.col("timestamp") <= cut_at), prefix)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_day_scored_from_its_lookback_equals_the_full_run(seed: int) -> None:
    pts = random_streams(seed, days=24)
    full = score_points(pts)
    for d in (8, 15, 16, 23):
        start, end = day(d), day(d + 1)
        part = score_points(pts.filter(pl.col("timestamp").is_between(start - LOOKBACK, end, closed="left")))
        assert_same_scores(at(full, start, end), at(part, start, end))


def test_generated_telemetry_partition_equals_full_run() -> None:
    sim = simulate_telemetry(TelemetryConfig(seed=21, hosts=2, days=20, jitter_seconds=5))
    full = score_points(sim.points)
    for d in (3, 14, 19):
        start, end = day(d), day(d + 1)
        part = score_points(sim.points.filter(pl.col("timestamp").is_between(start - LOOKBACK, end, closed="left")))
        assert_same_scores(at(full, start, end), at(part, start, end))


def test_streams_are_scored_independently_and_in_any_row_order() -> None:
    pts = random_streams(7, days=9)
    together = score_points(pts)
    alone = score_points(pts.filter(pl.col("metric") == "cpu"))
    assert_same_scores(together.filter(pl.col("metric") == "cpu"), alone)
    shuffled = pts.sample(fraction=1.0, shuffle=True, seed=1)
    out = score_points(shuffled)
    assert out.select(pts.columns).equals(shuffled)  # rows come back in the caller's order
    restored = out.sort("host", "metric", "timestamp")
    assert_same_scores(together.sort("host", "metric", "timestamp"), restored)


# --------------------------------------------------------------------------------------------------------------
# known answers


def test_a_latency_incident_scores_high_at_its_onset_and_quiet_before() -> None:
    v = daily_noise(10, seed=3, level=200, amp=30, noise=5)
    onset = 8 * 288 + 100
    v[onset : onset + 12] *= 2.5  # one hour of degradation
    out = score_points(stream(v, metric="latency"))
    inside = out[onset : onset + 12]
    assert inside["anomaly_score"].max() >= 0.6  # type: ignore[operator]
    assert out[onset]["anomaly_score"].item() >= 0.5  # detected at the first point
    assert out[2 * 288 : onset]["anomaly_score"].max() < 0.5  # type: ignore[operator]


def test_a_benign_level_shift_scores_at_onset_then_decays() -> None:
    v = daily_noise(10, seed=4, noise=1.0)
    onset = 7 * 288 + 50
    v[onset:] += 12.0  # a deploy: the new level persists
    out = score_points(stream(v, metric="cpu"))
    assert out[onset : onset + 3]["anomaly_score"].max() >= 0.5  # type: ignore[operator]
    after = out[onset + 24 : onset + 288]["anomaly_score"]  # 2 h later, for the rest of the day
    assert after.max() < 0.5  # type: ignore[operator]  # below any sensible alert threshold
    assert (after > 0.1).sum() <= 5  # of 264 rows


def test_a_stuck_stream_is_flagged_once_by_flatline() -> None:
    v = daily_noise(9, seed=5)
    start = 8 * 288
    v[start : start + 48] = v[start]  # stuck for 4 hours
    out = score_points(stream(v, metric="requests"))
    flat = out[start : start + 48]
    assert flat["score_flatline"].max() > 0.4  # type: ignore[operator]
    assert flat["anomaly_score"].max() >= 0.5  # type: ignore[operator]
    assert ((flat["anomaly_score"] > 0.1) & (flat["reason"] == "flatline")).sum() == 1
    assert out[:start]["score_flatline"].max() == 0.0


def test_a_stream_that_stops_and_comes_back_is_flagged_by_gap() -> None:
    v = daily_noise(9, seed=6)
    keep = np.ones(v.size, dtype=bool)
    keep[8 * 288 : 8 * 288 + 72] = False  # silent for 6 hours
    out = score_points(stream(v, metric="cpu").filter(pl.Series(keep)))
    back = out.filter(pl.col("timestamp") == day(8) + 72 * FIVE_MIN)
    assert back["score_gap"].item() > 0.3
    assert out.filter(pl.col("timestamp") < day(8))["score_gap"].max() == 0.0


def test_a_memory_leak_is_detected_while_it_climbs() -> None:
    v = daily_noise(10, seed=7, level=40, amp=0.0, noise=0.3)
    start, length = 8 * 288, 120  # ten hours
    v[start : start + length] += np.linspace(0, 45, length)
    out = score_points(stream(v, metric="memory"))
    climb = out[start : start + length]
    assert climb["anomaly_score"].max() >= 0.5  # type: ignore[operator]
    first = int(np.argmax(climb["anomaly_score"].to_numpy() >= 0.5))
    assert first < length * 0.6  # well before the end of the climb


def test_direction_prior_for_up_is_bad_metrics() -> None:
    v = daily_noise(9, seed=8, level=200, amp=20, noise=4)
    onset = 8 * 288
    up, down = v.copy(), v.copy()
    up[onset : onset + 6] += 80
    down[onset : onset + 6] -= 80
    up_score = score_points(stream(up, metric="latency_ms"))[onset : onset + 6]["anomaly_score"].max()
    down_score = score_points(stream(down, metric="latency_ms"))[onset : onset + 6]["anomaly_score"].max()
    generic = score_points(stream(down, metric="metric_17"))[onset : onset + 6]["anomaly_score"].max()
    assert up_score > down_score  # type: ignore[operator]
    assert generic > down_score  # type: ignore[operator]  # unknown names are two-sided


def test_generated_incidents_get_high_scores_and_normal_data_low() -> None:
    hits: dict[str, list[bool]] = {}
    outside_high = outside_total = 0
    for seed in (31, 32):  # together they hold every pattern
        sim = simulate_telemetry(
            TelemetryConfig(seed=seed, hosts=10, days=14, subtle_share=0.0, incidents_per_host=1.5)
        )
        out = score_points(sim.points)
        in_window = pl.Series([False] * out.height)
        for inc in sim.incidents:
            for metric, (a, b) in inc.windows.items():
                mask = (out["host"] == inc.host) & (out["metric"] == metric) & out["timestamp"].is_between(a, b)
                in_window = in_window | mask
                if mask.any():
                    best = out.filter(mask)["anomaly_score"].max()
                    hits.setdefault(inc.pattern, []).append(bool(best >= 0.5))  # type: ignore[operator]
        outside = out.filter(~in_window & (pl.col("timestamp") >= day(2)))["anomaly_score"]
        outside_high += int((outside >= 0.5).sum())
        outside_total += outside.len()
    rates = {p: sum(h) / len(h) for p, h in hits.items()}
    assert len(rates) == 5
    assert sum(sum(h) for h in hits.values()) / sum(len(h) for h in hits.values()) >= 0.7
    assert all(rate >= 0.4 for rate in rates.values()), rates
    assert outside_high / outside_total < 0.002


def test_quantised_stream_moves_by_one_step_are_not_alarms_but_a_drop_to_zero_is() -> None:
    rng = np.random.default_rng(11)
    v = np.full(10 * 288, 5.0)
    for k in rng.integers(0, v.size, 60):  # an autoscaling group: benign one-instance steps for a while
        v[k : k + int(rng.integers(6, 60))] += rng.choice([-1.0, 1.0])
    onset = 9 * 288 + 40
    v[onset : onset + 24] = 0.0  # every instance gone for two hours
    out = score_points(stream(v, metric="instance_count"))
    assert out[2 * 288 :]["scale"].min() >= 0.2  # type: ignore[operator]  # not ~0 although the MAD is 0
    drop = out[onset : onset + 3]["anomaly_score"].max()
    assert drop >= 0.6  # type: ignore[operator]
    before = out[2 * 288 : onset]["anomaly_score"]
    assert before.max() < drop - 0.15  # type: ignore[operator]
    assert (before > 0.3).sum() <= 10  # of 2,200 rows


def test_scores_start_on_the_first_complete_day_of_a_stream() -> None:
    start = T0 + dt.timedelta(hours=9)  # streams start at any time of day
    v = daily_noise(3, seed=12)
    v[30 * 12] += 25.0  # a 25-sigma spike 30 h after the start: one complete UTC day of history
    out = score_points(stream(v, metric="cpu", times=[start + i * FIVE_MIN for i in range(v.size)]))
    first_day = out.filter(pl.col("timestamp") < day(1))
    assert first_day["anomaly_score"].max() == 0.0  # no history yet
    assert out[30 * 12]["anomaly_score"].item() >= 0.3
    assert out[30 * 12]["anomaly_score"].item() == out.filter(pl.col("timestamp") >= day(1))["anomaly_score"].max()


def test_a_drop_in_a_heavy_tailed_byte_counter_is_flagged() -> None:
    rng = np.random.default_rng(13)
    n = 10 * 288
    v = 2e6 * np.exp(rng.normal(0.0, 0.4, n))
    burst = rng.random(n) < 0.01
    v[burst] *= rng.uniform(5.0, 30.0, int(burst.sum()))  # benign bursts, far above the usual level
    onset = 9 * 288 + 100
    v[onset : onset + 36] *= 0.02  # the traffic stops for three hours
    out = score_points(stream(np.round(v), metric="network_in"))
    drop = out[onset : onset + 36]["anomaly_score"].max()
    assert drop >= 0.5  # type: ignore[operator]
    assert drop > out[3 * 288 : onset]["anomaly_score"].quantile(0.999)  # type: ignore[operator]


# --------------------------------------------------------------------------------------------------------------
# robustness


def test_constant_series_scores_zero_without_nans() -> None:
    out = score_points(stream(np.full(9 * 288, 7.0)))
    assert out["anomaly_score"].max() == 0.0
    assert out["anomaly_score"].null_count() == 0
    assert out.filter(pl.col("timestamp") >= day(8))["baseline"].drop_nulls().unique().to_list() == [7.0]


def test_all_nan_single_point_and_tiny_streams() -> None:
    nan = score_points(stream(np.full(500, np.nan)))
    assert nan["anomaly_score"].max() == 0.0
    assert nan["baseline"].null_count() == 500
    single = score_points(stream([3.0]))
    assert single["anomaly_score"].to_list() == [0.0]
    tiny = score_points(pl.concat([stream([1.0, 2.0], host="a"), stream([5.0, 5.0, 50.0], host="b")]))
    assert tiny["anomaly_score"].to_list() == [0.0] * 5
    nulls = stream(daily_noise(3)).with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("value")).alias("value")
    )
    out = score_points(nulls)
    assert out.filter(pl.col("value").is_null())["anomaly_score"].max() == 0.0
    assert out["anomaly_score"].is_finite().all()


@pytest.mark.parametrize("step", [dt.timedelta(seconds=1), dt.timedelta(minutes=1), dt.timedelta(hours=1)])
def test_any_cadence_works(step: dt.timedelta) -> None:
    days = 2.2 if step < dt.timedelta(minutes=1) else 9.0  # scoring starts after a complete previous day
    n = int(days * 86400 / step.total_seconds())
    rng = np.random.default_rng(9)
    v = 10 + rng.normal(0, 1, n)
    v[-5:] += 30  # a clear jump at the end
    out = score_points(stream(v, step=step))
    assert out["anomaly_score"].is_finite().all()
    assert out[-5:]["anomaly_score"].max() > out[: n // 2]["anomaly_score"].max()  # type: ignore[operator]


def test_naive_timestamps_mean_utc_and_zones_are_converted() -> None:
    v = daily_noise(4, seed=10)
    utc = score_points(stream(v))
    naive = score_points(stream(v).with_columns(pl.col("timestamp").dt.replace_time_zone(None)))
    zoned = score_points(stream(v).with_columns(pl.col("timestamp").dt.convert_time_zone("Asia/Kolkata")))
    assert naive["anomaly_score"].equals(utc["anomaly_score"])
    assert zoned["anomaly_score"].equals(utc["anomaly_score"])
    assert zoned.schema["timestamp"] == pl.Datetime("us", "UTC")
