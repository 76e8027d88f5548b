"""Windowed scoring of streaming anomaly detectors (the Numenta Anomaly Benchmark method), pure numpy/polars.

The method, per stream (a `host/metric` time series of anomaly scores), following NAB's `sweeper.py`:

- Label windows `[start, end]` (inclusive) are matched to the stream's rows by timestamp; overlapping or touching
  windows of one stream are merged. A window's *width* is its number of rows, positions are row indices (as NAB).
- A *detection* is a row whose `anomaly_score >= threshold` (a null or NaN score never detects).
- Inside a window, only the first detection counts. It earns `A_TP * σ(p) / σ(-1)` where
  `σ(y) = 2 / (1 + exp(5 y)) - 1` is NAB's scaled sigmoid and `p = -(right_index - i + 1) / width` is the
  relative position of row `i` (`p = -1` at the left edge, so the earliest detection earns exactly `A_TP`; the
  last row has `p = -1/width` and earns almost nothing). A window with no detection costs `-A_FN`.
- A detection outside every window costs `A_FP * σ(d)` (a negative number) where
  `d = |i - prev_right_index| / (prev_width - 1)` is its distance after the end of the preceding window in units
  of that window's width (NAB's formula; we use `max(prev_width - 1, 1)` where NAB would divide by zero), and
  `σ(d) = -1` once `d > 3`. A detection before the first window costs the full `-A_FP`. Every such detection
  counts, so a score that stays high for an hour after a benign change pays for every row.
- The first `min(floor(0.15 n), 750)` rows of each stream are a probation period: nothing there is scored. A
  window that lies entirely in probation (or has no rows at all) is not scored either (NAB does the same); one
  that straddles the boundary is scored on its rows after probation, with positions from its full width.

Profiles (NAB's cost matrices): `standard` (A_TP 1, A_FP 0.11, A_FN 1), `reward_low_FP` (A_FP 0.22; NAB's
`reward_low_FP_rate`) and `reward_low_FN` (A_FN 2; NAB's `reward_low_FN_rate`). NAB also lists `A_TN = 1`; true
negatives are never counted in the score, so it has no effect and is only reported for completeness.

For each profile one threshold is chosen for *all* streams together, maximising the total raw score. The sweep
sorts every scorable row by score once and evaluates every distinct score as a threshold incrementally (a
running per-window maximum and a running false-positive sum), so it costs O(N log N) for N rows in total.

The raw score is normalised as NAB does: `100 * (raw - null) / (perfect - null)` where `null = -A_FN * W` (a
detector that never fires misses all W scored windows) and `perfect = A_TP * W` (every window detected at its
left edge, no false positives). With no scored window the normalised score is NaN.

At the chosen threshold we also report window-level counts (TP = windows detected, FN = windows missed, FP =
detections outside windows, probation excluded) and the median detection delay (first detection minus window
start, over detected windows).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

PROBATION_SHARE = 0.15
PROBATION_MAX_ROWS = 750  # NAB: probationPercent * 5000


@dataclass(frozen=True)
class CostProfile:
    """NAB's cost matrix. `a_tn` is listed by NAB but never enters the score (TNs are not counted)."""

    a_tp: float
    a_fp: float
    a_fn: float
    a_tn: float = 1.0


PROFILES: dict[str, CostProfile] = {
    "standard": CostProfile(a_tp=1.0, a_fp=0.11, a_fn=1.0),
    "reward_low_FP": CostProfile(a_tp=1.0, a_fp=0.22, a_fn=1.0),
    "reward_low_FN": CostProfile(a_tp=1.0, a_fp=0.11, a_fn=2.0),
}

Labels = dict[str, list[tuple[dt.datetime, dt.datetime]]]


class LabelError(ValueError):
    """A labels file or mapping is malformed; the message says where and why."""


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    score: float
    raw: float
    null: float
    perfect: float
    threshold: float
    tp: int
    fp: int
    fn: int
    median_delay: dt.timedelta | None


@dataclass(frozen=True)
class WindowedScoringResult:
    profiles: dict[str, ProfileResult]
    streams: int
    windows: int
    windows_not_scored: int
    points: int
    scored_points: int
    label_streams_without_points: list[str] = field(default_factory=list)

    def to_frame(self) -> pl.DataFrame:
        """One row per profile: normalised score, threshold, counts and median delay (seconds)."""
        return pl.DataFrame(
            [
                {
                    "profile": r.profile,
                    "score": r.score,
                    "threshold": r.threshold,
                    "tp": r.tp,
                    "fp": r.fp,
                    "fn": r.fn,
                    "median_delay_s": None if r.median_delay is None else r.median_delay.total_seconds(),
                    "raw": r.raw,
                }
                for r in self.profiles.values()
            ]
        )


def scaled_sigmoid(position: np.ndarray | float) -> np.ndarray:
    """NAB's `scaledSigmoid`: `2 / (1 + exp(5 y)) - 1`, and exactly -1 for `y > 3`."""
    y = np.asarray(position, dtype=np.float64)
    with np.errstate(over="ignore"):
        val = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, val)


def probation_rows(n: int) -> int:
    """Rows at the start of a stream of `n` rows that are never scored."""
    return int(min(math.floor(PROBATION_SHARE * n), PROBATION_MAX_ROWS))


# --------------------------------------------------------------------------------------------------------------
# labels


def load_labels(path_or_dir: str | Path) -> Labels:
    """Read `{"<host>/<metric>": [["start", "end"], ...]}` from a JSON file, or merge every `*.json` in a folder.

    Timestamps are ISO 8601 (with `Z`, an offset, or naive meaning UTC) or epoch seconds; they come back as
    UTC-aware datetimes. Raises `LabelError` naming the file, key and entry on malformed input.
    """
    path = Path(path_or_dir)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise LabelError(f"no *.json label files in folder {path}")
    elif path.is_file():
        files = [path]
    else:
        raise LabelError(f"labels path {path} does not exist")
    merged: Labels = {}
    for file in files:
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise LabelError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        except UnicodeDecodeError as exc:
            raise LabelError(f"{file}: not UTF-8 text") from exc
        for key, windows in parse_labels(raw, source=str(file)).items():
            merged.setdefault(key, []).extend(windows)
    return {k: sorted(v) for k, v in merged.items()}


def parse_labels(raw: object, source: str = "labels") -> Labels:
    """Validate an already-decoded labels mapping (see `load_labels`)."""
    if not isinstance(raw, dict):
        raise LabelError(f"{source}: expected a JSON object of '<host>/<metric>' keys, got {type(raw).__name__}")
    out: Labels = {}
    for key, windows in raw.items():
        if not isinstance(key, str) or "/" not in key or key.startswith("/") or key.endswith("/"):
            raise LabelError(f"{source}: key {key!r} is not of the form '<host>/<metric>'")
        if not isinstance(windows, list):
            raise LabelError(f"{source}: {key}: expected a list of [start, end] pairs, got {type(windows).__name__}")
        parsed: list[tuple[dt.datetime, dt.datetime]] = []
        for i, pair in enumerate(windows):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise LabelError(f"{source}: {key}[{i}]: expected [start, end], got {pair!r}")
            start = _parse_time(pair[0], f"{source}: {key}[{i}] start")
            end = _parse_time(pair[1], f"{source}: {key}[{i}] end")
            if end < start:
                raise LabelError(f"{source}: {key}[{i}]: end {pair[1]!r} is before start {pair[0]!r}")
            parsed.append((start, end))
        out[key] = parsed
    return out


def _parse_time(value: object, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, bool):
        raise LabelError(f"{where}: expected an ISO 8601 timestamp, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise LabelError(f"{where}: expected a finite epoch, got {value!r}")
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    if not isinstance(value, str):
        raise LabelError(f"{where}: expected an ISO 8601 timestamp, got {type(value).__name__}")
    text = value.strip()
    try:
        if text.lstrip("-").replace(".", "", 1).isdigit():
            return dt.datetime.fromtimestamp(float(text), tz=dt.UTC)
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, OverflowError) as exc:
        raise LabelError(f"{where}: cannot parse timestamp {value!r}") from exc
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


# --------------------------------------------------------------------------------------------------------------
# scoring


@dataclass
class _Sweep:
    score: np.ndarray  # scorable rows only
    window: np.ndarray  # global window id, -1 outside windows
    tp_unit: np.ndarray  # sigma(p) / sigma(-1) for in-window rows
    fp_unit: np.ndarray  # sigma(d) (negative) for rows outside windows
    time_us: np.ndarray
    window_start_us: np.ndarray  # per global window id
    n_windows: int
    not_scored: int


def _to_us(when: dt.datetime) -> int:
    when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _merge(windows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _prepare(
    scores: pl.DataFrame, labels: Mapping[str, Sequence[tuple[dt.datetime, dt.datetime]]]
) -> tuple[_Sweep, int, int, list[str]]:
    missing = [c for c in ("host", "metric", "timestamp", "anomaly_score") if c not in scores.columns]
    if missing:
        raise ValueError(f"scores frame lacks column(s) {missing}; it needs host, metric, timestamp, anomaly_score")
    ts = scores.get_column("timestamp")
    if not isinstance(ts.dtype, pl.Datetime):
        raise ValueError(f"timestamp must be a Datetime column, got {ts.dtype}")
    frame = scores.select(
        pl.col("host").cast(pl.String),
        pl.col("metric").cast(pl.String),
        (
            pl.col("timestamp").dt.replace_time_zone("UTC")
            if ts.dtype.time_zone is None
            else pl.col("timestamp").dt.convert_time_zone("UTC")
        )
        .dt.epoch("us")
        .alias("t"),
        pl.col("anomaly_score").cast(pl.Float64).fill_nan(None).fill_null(-math.inf).alias("s"),
    ).drop_nulls("t")
    # rows must be grouped by stream and time-ordered within it; sort (by integer keys: sorting strings is
    # slow) only when they are not
    key = pl.struct("host", "metric")
    check = frame.select(
        runs=key.rle_id().max(),
        streams=key.n_unique(),
        ordered=((pl.col("t") >= pl.col("t").shift()) | key.rle_id().diff().ne(0)).slice(1).all(),
    )
    runs, streams, ordered = check.row(0)
    if frame.height > 1 and not (ordered and runs is not None and runs + 1 == streams):
        frame = frame.with_columns(key.rank("dense").alias("k")).sort("k", "t").drop("k")
    new_stream = frame.select(key.rle_id().diff().fill_null(1).ne(0).alias("new")).to_series()
    starts = new_stream.arg_true().to_numpy().astype(np.int64)
    ends = np.r_[starts[1:], frame.height].astype(np.int64)
    heads = frame[starts.tolist()] if starts.size else frame.head(0)
    names = [f"{h}/{m}" for h, m in zip(heads.get_column("host"), heads.get_column("metric"), strict=True)]
    t_all = frame.get_column("t").to_numpy().astype(np.int64)
    s_all = frame.get_column("s").to_numpy().astype(np.float64)
    label_us = {k: _merge([(_to_us(a), _to_us(b)) for a, b in v]) for k, v in labels.items()}
    seen: set[str] = set()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("s", "w", "tp", "fp", "t")}
    window_starts: list[int] = []
    not_scored = 0
    for name, lo, hi in zip(names, starts.tolist(), ends.tolist(), strict=True):
        seen.add(name)
        t = t_all[lo:hi]
        s = s_all[lo:hi]
        n = t.size
        window = np.full(n, -1, dtype=np.int64)
        tp_unit = np.zeros(n)
        position_past = np.full(n, np.inf)  # distance after the preceding window; inf = none precedes
        probation = probation_rows(n)
        prev_right = -1
        prev_width = 0
        index = np.arange(n)
        for start_us, end_us in label_us.get(name, []):
            a = int(np.searchsorted(t, start_us, side="left"))
            b = int(np.searchsorted(t, end_us, side="right"))
            if b <= a:
                not_scored += 1
                continue
            width = b - a
            right = b - 1
            if prev_right >= 0:
                gap = slice(prev_right + 1, a)
                position_past[gap] = (index[gap] - prev_right) / max(prev_width - 1, 1)
            if right < probation:
                not_scored += 1
            else:
                window[a:b] = len(window_starts)
                window_starts.append(start_us)
            tp_unit[a:b] = scaled_sigmoid(-(right - index[a:b] + 1) / width)
            prev_right, prev_width = right, width
        if prev_right >= 0:
            tail = slice(prev_right + 1, n)
            position_past[tail] = (index[tail] - prev_right) / max(prev_width - 1, 1)
        outside = np.isinf(position_past)
        fp_unit = np.where(outside, -1.0, scaled_sigmoid(np.where(outside, 0.0, position_past)))
        keep = index >= probation
        parts["s"].append(s[keep])
        parts["w"].append(window[keep])
        parts["tp"].append(tp_unit[keep] / float(scaled_sigmoid(-1.0)))
        parts["fp"].append(fp_unit[keep])
        parts["t"].append(t[keep])
    unmatched = sorted(k for k, v in label_us.items() if v and k not in seen)
    not_scored += sum(len(label_us[k]) for k in unmatched)

    def cat(key: str, dtype: type) -> np.ndarray:
        return np.concatenate(parts[key]).astype(dtype) if parts[key] else np.empty(0, dtype=dtype)

    sweep = _Sweep(
        score=cat("s", np.float64),
        window=cat("w", np.int64),
        tp_unit=cat("tp", np.float64),
        fp_unit=cat("fp", np.float64),
        time_us=cat("t", np.int64),
        window_start_us=np.asarray(window_starts, dtype=np.int64),
        n_windows=len(window_starts),
        not_scored=not_scored,
    )
    return sweep, len(starts), frame.height, unmatched


def _best_threshold(sw: _Sweep, order: np.ndarray, cost: CostProfile) -> tuple[float, float]:
    """Return (raw score, threshold) maximising the total; threshold = inf means 'never fire'."""
    base = -cost.a_fn * sw.n_windows
    n = order.size
    if n == 0:
        return base, math.inf
    win = sw.window[order]
    in_win = win >= 0
    fp_gain = np.where(in_win, 0.0, sw.fp_unit[order] * cost.a_fp)
    tp_val = sw.tp_unit[order] * cost.a_tp
    # running best sweep score per window, in processing order; improvements are the gains
    pos = np.flatnonzero(in_win)
    gains = np.zeros(n)
    if pos.size:
        g = win[pos]
        by_window = np.argsort(g, kind="stable")
        gw = g[by_window]
        vals = tp_val[pos][by_window]
        offset = gw.astype(np.float64) * 4.0 * (cost.a_tp + cost.a_fn + 1.0)
        running = np.maximum.accumulate(vals + offset) - offset
        first = np.ones(gw.size, dtype=bool)
        first[1:] = gw[1:] != gw[:-1]
        prev = np.where(first, -cost.a_fn, np.concatenate([[0.0], running[:-1]]))
        gains[pos[by_window]] = running - prev
    total = base + np.cumsum(gains + fp_gain)
    sorted_scores = sw.score[order]
    cut = np.ones(n, dtype=bool)
    cut[:-1] = sorted_scores[:-1] != sorted_scores[1:]
    cut &= np.isfinite(sorted_scores)
    candidates = np.flatnonzero(cut)
    if candidates.size == 0:
        return base, math.inf
    best = candidates[int(np.argmax(total[candidates]))]
    if total[best] <= base:
        return base, math.inf
    return float(total[best]), float(sorted_scores[best])


def _evaluate(sw: _Sweep, threshold: float, cost: CostProfile) -> tuple[float, int, int, int, dt.timedelta | None]:
    fired = sw.score >= threshold
    in_win = sw.window >= 0
    fp_rows = fired & ~in_win
    raw = float(np.sum(sw.fp_unit[fp_rows]) * cost.a_fp)
    hits = fired & in_win
    detected = 0
    delays: list[int] = []
    if hits.any():
        w = sw.window[hits]
        tp = sw.tp_unit[hits]
        t = sw.time_us[hits]
        order = np.lexsort((t, w))
        w, tp, t = w[order], tp[order], t[order]
        first = np.ones(w.size, dtype=bool)
        first[1:] = w[1:] != w[:-1]
        detected = int(first.sum())
        raw += float(np.sum(tp[first]) * cost.a_tp)
        delays = (t[first] - sw.window_start_us[w[first]]).tolist()
    raw -= cost.a_fn * (sw.n_windows - detected)
    delay = dt.timedelta(microseconds=float(np.median(delays))) if delays else None
    return raw, detected, int(fp_rows.sum()), sw.n_windows - detected, delay


def score_detections(
    scores: pl.DataFrame,
    labels: Mapping[str, Sequence[tuple[dt.datetime, dt.datetime]]],
    profiles: Mapping[str, CostProfile] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> WindowedScoringResult:
    """Score `scores` (host, metric, timestamp, anomaly_score) against label windows per `host/metric`.

    Each profile gets the threshold that maximises its total score over all streams, unless `thresholds`
    gives one (e.g. a threshold chosen on another corpus). Streams without labels still count: all their
    detections are false positives.
    """
    profiles = dict(PROFILES if profiles is None else profiles)
    sw, n_streams, n_points, unmatched = _prepare(scores, labels)
    order = np.argsort(-sw.score, kind="stable")
    results: dict[str, ProfileResult] = {}
    for name, cost in profiles.items():
        if thresholds is not None and name in thresholds:
            threshold = float(thresholds[name])
        else:
            _, threshold = _best_threshold(sw, order, cost)
        raw, tp, fp, fn, delay = _evaluate(sw, threshold, cost)
        null = -cost.a_fn * sw.n_windows
        perfect = cost.a_tp * sw.n_windows
        norm = 100.0 * (raw - null) / (perfect - null) if perfect > null else math.nan
        results[name] = ProfileResult(
            profile=name,
            score=norm,
            raw=raw,
            null=null,
            perfect=perfect,
            threshold=threshold,
            tp=tp,
            fp=fp,
            fn=fn,
            median_delay=delay,
        )
    return WindowedScoringResult(
        profiles=results,
        streams=n_streams,
        windows=sw.n_windows,
        windows_not_scored=sw.not_scored,
        points=n_points,
        scored_points=int(sw.score.size),
        label_streams_without_points=unmatched,
    )
