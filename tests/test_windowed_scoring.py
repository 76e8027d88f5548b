"""The windowed (NAB) scoring method: hand-computed cases, a literal reference implementation, label parsing."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.telemetry.windowed_scoring import (
    PROFILES,
    CostProfile,
    LabelError,
    load_labels,
    parse_labels,
    probation_rows,
    scaled_sigmoid,
    score_detections,
)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)
MAX_TP = 2.0 / (1.0 + math.exp(-5.0)) - 1.0  # sigma(-1)


def ts(i: int) -> dt.datetime:
    return T0 + i * STEP


def frame(streams: dict[str, list[float]]) -> pl.DataFrame:
    rows = []
    for key, scores in streams.items():
        host, metric = key.split("/")
        rows += [(host, metric, ts(i), s) for i, s in enumerate(scores)]
    return pl.DataFrame(
        rows,
        schema={
            "host": pl.String,
            "metric": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "anomaly_score": pl.Float64,
        },
        orient="row",
    )


def fired(n: int, at: list[int]) -> list[float]:
    out = [0.0] * n
    for i in at:
        out[i] = 1.0
    return out


# --------------------------------------------------------------------------------------------------------------
# the sigmoid and probation


def test_scaled_sigmoid_matches_nab_documented_values() -> None:
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(0.98661, abs=1e-5)
    assert float(scaled_sigmoid(-0.5)) == pytest.approx(0.84828, abs=1e-5)
    assert float(scaled_sigmoid(0.0)) == 0.0
    assert float(scaled_sigmoid(1.0)) == pytest.approx(-0.98661, abs=1e-5)
    assert float(scaled_sigmoid(3.5)) == -1.0


def test_probation_is_15_percent_capped_at_750_rows() -> None:
    assert probation_rows(100) == 15
    assert probation_rows(1000) == 150
    assert probation_rows(10_000) == 750
    assert probation_rows(3) == 0


# --------------------------------------------------------------------------------------------------------------
# hand-computed cases (100 rows per stream: probation = rows 0..14)


def test_perfect_detector_scores_100_and_never_firing_scores_0() -> None:
    labels = {"h/m": [(ts(40), ts(49)), (ts(70), ts(79))]}
    perfect = score_detections(frame({"h/m": fired(100, [40, 70])}), labels)
    never = score_detections(frame({"h/m": [0.0] * 100}), labels)
    for name in PROFILES:
        assert perfect.profiles[name].score == pytest.approx(100.0)
        assert perfect.profiles[name].tp == 2
        assert perfect.profiles[name].fp == 0
        assert never.profiles[name].score == pytest.approx(0.0)
        assert never.profiles[name].fn == 2
    assert perfect.profiles["standard"].median_delay == dt.timedelta(0)


def test_detection_at_window_start_earns_a_tp_and_the_other_window_costs_a_fn() -> None:
    labels = {"h/m": [(ts(40), ts(49)), (ts(70), ts(79))]}
    result = score_detections(frame({"h/m": fired(100, [40])}), labels)
    std = result.profiles["standard"]
    assert std.raw == pytest.approx(1.0 - 1.0)  # +A_TP for window 1, -A_FN for window 2
    assert std.score == pytest.approx(50.0)
    low_fn = result.profiles["reward_low_FN"]
    assert low_fn.raw == pytest.approx(1.0 - 2.0)
    assert low_fn.score == pytest.approx(100 * (-1.0 + 4.0) / (2.0 + 4.0))


def test_late_detection_earns_the_scaled_sigmoid_of_its_position() -> None:
    # window of 10 rows (40..49); a detection at row 45 has position -(49 - 45 + 1) / 10 = -0.5
    labels = {"h/m": [(ts(40), ts(49))]}
    result = score_detections(frame({"h/m": fired(100, [45, 47])}), labels)
    expected = (2.0 / (1.0 + math.exp(-2.5)) - 1.0) / MAX_TP  # only the first detection counts
    assert result.profiles["standard"].raw == pytest.approx(expected)
    assert result.profiles["standard"].median_delay == 5 * STEP
    assert result.profiles["standard"].tp == 1


def test_false_positive_right_after_a_window_costs_less_than_far_away() -> None:
    labels = {"h/m": [(ts(40), ts(49))]}
    near = score_detections(frame({"h/m": fired(100, [40, 51])}), labels, thresholds={"standard": 0.5})
    far = score_detections(frame({"h/m": fired(100, [40, 90])}), labels, thresholds={"standard": 0.5})
    # distance after the window: (51 - 49) / (10 - 1); far: (90 - 49) / 9 > 3 -> the full cost
    near_cost = 0.11 * (2.0 / (1.0 + math.exp(5.0 * 2 / 9)) - 1.0)
    assert near.profiles["standard"].raw == pytest.approx(1.0 + near_cost)
    assert far.profiles["standard"].raw == pytest.approx(1.0 - 0.11)
    assert near.profiles["standard"].raw > far.profiles["standard"].raw
    assert near.profiles["standard"].fp == far.profiles["standard"].fp == 1


def test_false_positive_before_the_first_window_costs_full_a_fp() -> None:
    labels = {"h/m": [(ts(60), ts(69))]}
    result = score_detections(
        frame({"h/m": fired(100, [30, 60])}), labels, thresholds={"standard": 0.5, "reward_low_FP": 0.5}
    )
    assert result.profiles["standard"].raw == pytest.approx(1.0 - 0.11)
    assert result.profiles["reward_low_FP"].raw == pytest.approx(1.0 - 0.22)


def test_probation_rows_are_ignored() -> None:
    labels = {"h/m": [(ts(60), ts(69))]}
    with_early = score_detections(frame({"h/m": fired(100, [3, 10, 60])}), labels, thresholds={"standard": 0.5})
    assert with_early.profiles["standard"].fp == 0
    assert with_early.profiles["standard"].raw == pytest.approx(1.0)
    # a window entirely inside probation is not scored at all
    in_probation = score_detections(frame({"h/m": [0.0] * 100}), {"h/m": [(ts(2), ts(8))]})
    assert in_probation.windows == 0
    assert in_probation.windows_not_scored == 1
    assert math.isnan(in_probation.profiles["standard"].score)


def test_streams_without_labels_still_count_their_false_positives() -> None:
    labels = {"h/m": [(ts(40), ts(49))]}
    scores = frame({"h/m": fired(100, [40]), "h/other": fired(100, [50, 60])})
    result = score_detections(scores, labels, thresholds={"standard": 0.5})
    assert result.profiles["standard"].fp == 2
    assert result.profiles["standard"].raw == pytest.approx(1.0 - 2 * 0.11)
    assert result.streams == 2


def test_the_chosen_threshold_skips_costly_false_positives() -> None:
    labels = {"h/m": [(ts(40), ts(49))]}
    scores = [0.0] * 100
    scores[42] = 0.8  # the true detection
    for i in range(20, 30):  # ten lower false alarms that would cost more than the detection earns
        scores[i] = 0.5
    result = score_detections(frame({"h/m": scores}), labels)
    std = result.profiles["standard"]
    assert std.threshold == 0.8
    assert (std.tp, std.fp, std.fn) == (1, 0, 0)


def test_overlapping_windows_are_merged() -> None:
    labels = {"h/m": [(ts(40), ts(49)), (ts(45), ts(55))]}
    result = score_detections(frame({"h/m": fired(100, [40])}), labels)
    assert result.windows == 1
    assert result.profiles["standard"].score == pytest.approx(100.0)


def test_input_order_and_null_scores_do_not_matter() -> None:
    labels = {"h/m": [(ts(40), ts(49))]}
    scores = frame({"h/m": fired(100, [41])})
    shuffled = scores.sample(fraction=1.0, shuffle=True, seed=3).with_columns(
        pl.when(pl.col("anomaly_score") == 0).then(None).otherwise(pl.col("anomaly_score")).alias("anomaly_score")
    )
    a = score_detections(scores, labels).profiles["standard"]
    b = score_detections(shuffled, labels).profiles["standard"]
    assert (a.raw, a.threshold, a.tp) == (b.raw, b.threshold, b.tp)


def test_missing_columns_raise_a_clear_error() -> None:
    with pytest.raises(ValueError, match="anomaly_score"):
        score_detections(frame({"h/m": [0.0]}).drop("anomaly_score"), {})


# --------------------------------------------------------------------------------------------------------------
# against a literal, row-by-row implementation of NAB's rules


def reference_raw(
    streams: dict[str, list[float]], labels: dict[str, list[tuple[int, int]]], thr: float, cost: CostProfile
) -> float:
    """NAB's calcSweepScore + scoring at one threshold, one row at a time (windows as row index ranges)."""
    total = 0.0
    for key, scores in streams.items():
        n = len(scores)
        probation = min(math.floor(0.15 * n), 750)
        windows = sorted(labels.get(key, []))
        window_of = [-1] * n
        for w, (a, b) in enumerate(windows):
            for i in range(a, b + 1):
                window_of[i] = w
        best = {w: -cost.a_fn for w, (a, b) in enumerate(windows) if b >= probation}
        prev_right: int | None = None
        prev_width = 1
        for i, s in enumerate(scores):
            w = window_of[i]
            if w >= 0:
                a, b = windows[w]
                width = b - a + 1
                value = cost.a_tp * float(scaled_sigmoid(-(b - i + 1) / width)) / MAX_TP
                if i == b:
                    prev_right, prev_width = b, width
            elif prev_right is None:
                value = -cost.a_fp
            else:
                value = cost.a_fp * float(scaled_sigmoid(abs(i - prev_right) / max(prev_width - 1, 1)))
            if i < probation or s < thr:
                continue
            if w >= 0:
                best[w] = max(best[w], value)
            else:
                total += value
        total += sum(best.values())
    return total


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    n_streams=st.integers(1, 3),
    length=st.integers(20, 120),
)
def test_sweep_matches_the_reference_at_every_threshold(data: st.DataObject, n_streams: int, length: int) -> None:
    streams: dict[str, list[float]] = {}
    row_labels: dict[str, list[tuple[int, int]]] = {}
    for k in range(n_streams):
        key = f"h{k}/m"
        streams[key] = data.draw(
            st.lists(st.sampled_from([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), min_size=length, max_size=length)
        )
        n_win = data.draw(st.integers(0, 3))
        cuts = sorted(
            data.draw(st.lists(st.integers(0, length - 1), min_size=2 * n_win, max_size=2 * n_win, unique=True))
        )
        row_labels[key] = [(cuts[2 * j], cuts[2 * j + 1]) for j in range(n_win)]
    labels = {k: [(ts(a), ts(b)) for a, b in v] for k, v in row_labels.items()}
    scores = frame(streams)
    candidates = sorted({s for v in streams.values() for s in v} | {math.inf})
    for name, cost in PROFILES.items():
        for thr in candidates:
            got = score_detections(scores, labels, thresholds={name: thr}, profiles={name: cost})
            assert got.profiles[name].raw == pytest.approx(reference_raw(streams, row_labels, thr, cost), abs=1e-9)
        best = max(reference_raw(streams, row_labels, thr, cost) for thr in candidates)
        optimised = score_detections(scores, labels, profiles={name: cost}).profiles[name]
        assert optimised.raw == pytest.approx(best, abs=1e-9)


def test_sweep_is_fast_for_hundreds_of_streams() -> None:
    rng = np.random.default_rng(0)
    n_streams, length = 200, 10_000
    t0_us = int(T0.timestamp()) * 1_000_000
    t = t0_us + np.tile(np.arange(length, dtype=np.int64) * 300_000_000, n_streams)
    scores = pl.DataFrame(
        {
            "host": np.repeat([f"h{i}" for i in range(n_streams)], length),
            "metric": "m",
            "timestamp": pl.Series(t).cast(pl.Datetime("us", "UTC")),
            "anomaly_score": rng.random(n_streams * length) ** 8,
        }
    )
    labels = {f"h{i}/m": [(ts(5000), ts(5100))] for i in range(n_streams)}
    start = time.perf_counter()
    result = score_detections(scores, labels)
    assert time.perf_counter() - start < 30.0  # generous: shared CI machines; guards against O(n^2)
    assert result.windows == n_streams
    assert result.points == n_streams * length


# --------------------------------------------------------------------------------------------------------------
# labels


def test_load_labels_from_a_file_and_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(
        json.dumps(
            {
                "web-1/latency": [["2024-01-02T10:00:00Z", "2024-01-02T11:00:00Z"]],
                "web-1/cpu": [],
            }
        )
    )
    (tmp_path / "b.json").write_text(
        json.dumps({"web-1/latency": [["2024-01-03T10:00:00+01:00", "2024-01-03T10:30:00"]], "db/errors": []})
    )
    one = load_labels(tmp_path / "a.json")
    assert one["web-1/latency"] == [
        (dt.datetime(2024, 1, 2, 10, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, 11, tzinfo=dt.UTC))
    ]
    both = load_labels(tmp_path)
    assert set(both) == {"web-1/latency", "web-1/cpu", "db/errors"}
    assert both["web-1/latency"][1] == (
        dt.datetime(2024, 1, 3, 9, tzinfo=dt.UTC),  # the offset is honoured
        dt.datetime(2024, 1, 3, 10, 30, tzinfo=dt.UTC),  # naive means UTC
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"nohostmetric": []}', "not of the form"),
        ('{"h/m": "x"}', "list of \\[start, end\\] pairs"),
        ('{"h/m": [["2024-01-01T00:00:00Z"]]}', "expected \\[start, end\\]"),
        ('{"h/m": [["yesterday", "2024-01-01T00:00:00Z"]]}', "cannot parse timestamp"),
        ('{"h/m": [["2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"]]}', "before start"),
    ],
)
def test_load_labels_rejects_bad_input_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.json"
    path.write_text(content)
    with pytest.raises(LabelError, match=message):
        load_labels(path)


def test_load_labels_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="does not exist"):
        load_labels(tmp_path / "nope.json")
    with pytest.raises(LabelError, match=r"no \*\.json"):
        load_labels(tmp_path)


def test_parse_labels_accepts_epoch_seconds() -> None:
    parsed = parse_labels({"h/m": [[1704067200, "1704070800"]]})
    assert parsed["h/m"] == [(T0, T0 + dt.timedelta(hours=1))]
