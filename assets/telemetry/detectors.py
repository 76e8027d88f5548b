"""Causal, bounded-lookback anomaly scoring of telemetry streams (pure numpy/polars, no Dagster).

`score_points(points)` takes `host, metric, timestamp, value` rows of any number of streams (a stream is one
`host, metric` pair) and returns the same rows, in the same order, with an `anomaly_score` in [0, 1] and the
features behind it (`OUTPUT_COLUMNS`).

Guarantees
----------
- **Causal**: the score at time t uses only points of the same stream with timestamp <= t.
- **Bounded lookback, exact**: the score at t depends only on points in `(t - LOOKBACK, t]` (14 days), so a
  daily partition scored from the points of `[day_start - LOOKBACK, day_end]` gets bit-for-bit the scores of
  one run over the whole history. Every statistic is an order statistic (median, quantile, min, max), a sum
  over one complete hour of one stream, or per-row arithmetic: no running sums, no EWMA, no recursion, whose
  floating-point result would depend on where a run starts. The budget, oldest first: calibration uses the 4
  complete UTC days before t's day (> t - 5 d); each of those rows uses the 7 complete days before its own
  day, whose hourly noise looks 12 h further back (> row - 8.5 d; a row's own local context reaches back at
  most 36 h); novelty looks back 6 hourly cells, the echo step one more (< 9 h). Total < 13.9 days.
- **Any cadence, irregular samples**: history lives on a grid of UTC hours per stream ("cells"); the local
  context is the previous points, counted only within `LOCAL_CAP` (12 h). Surprise is counted per point, so a
  score means about the same at 1 min, 5 min or 1 h. Warm-up: scores start on the first UTC day after the
  stream's first day that has at least 3 hours of points (so 1 to 2 days after its first point; a stream
  starting late in a UTC day waits one more day); until a component has 8 hours of calibration history it is
  calibrated against a conservative prior (step 4).

Design of the ensemble
----------------------
1. *History.* Per stream and cell: trimmed mean of the values (min and max dropped), min, max, mean absolute
   first difference, smallest and largest spacing, longest constant run, number of points. References are
   order statistics of these over the 7 complete UTC days before the current day, recomputed once a day: a
   reference that does not chase an incident in progress.
2. *Noise scale* `scale`: the mean |first difference| at this hour of the day over the previous 7 days
   (median across days, x 0.886, the Gaussian factor), never below half of the stream's overall level, nor
   below `STEP_FLOOR` times the typical *non-zero* move (median over hours and days of the mean non-zero
   |first difference|). Differences ignore trends and seasonality; the per-hour view follows heteroscedastic
   streams (noisier at their daily peak); medians across hours and days shrug off spikes. The step floor
   keeps quantised and step-like streams (integer counts, autoscaling groups, 1 % CPU steps: mostly flat,
   MAD 0) from measuring every one-step move in thousands of "sigmas".
3. *Components*, as magnitudes in noise units. For a metric whose name says "up is bad" (latency, errors,
   memory, timeouts, …) a downward move counts `DOWN_WEIGHT_UP_IS_BAD`; unknown names are two-sided.
   - `spike`: the value against the median of the previous 5 points (sudden onsets, single spikes);
   - `level`: the median of the last 3 points against the median of the 5 before them (a change point
     confirmed by two points, blind to single spikes);
   - `seasonal`: the median of the last 3 points against the *seasonal baseline* — the median of the hourly
     means at this time of day on each of the previous 7 days (interpolated between hours), or the same hour
     one week earlier when that is closer (weekly patterns) — scaled by noise and the day-to-day spread (MAD)
     of those samples. Catches "normal value at the wrong time" and drifts;
   - `sustained`: the same against the median of about the last 27 points (a median of medians of 3; 2¼ h at
     5 min): evidence that accumulates while a moderate shift persists (CUSUM-like, but exact);
   - `range`: the 3-point median (a new extreme) or the 9-point median (a new level, confirmed by 5 points)
     beyond the min/max of the same statistic over the previous 7 days (a level never seen in the last
     week). The excess above the max counts in tenths of twice the distance from the typical level (median
     of the daily medians) up to the max, and below the min likewise downwards, so a skewed stream (bursty
     byte counters, latencies) is judged by its own side: a drop towards zero is not measured against the
     height of its bursts. Where the record sits far above a typical day's extreme (a heavy tail, records
     are routine) the unit is at least `RANGE_TAIL` times that distance;
   - `volatility`: median |first difference| of the last 5 points against the noise scale (noise bursts);
   - `flatline`: the value has stayed exactly constant twice as long as the longest constant run of the
     previous 7 days (a stuck metric); step-shaped, so it fires once;
   - `gap`: time since the previous point beyond the longest gap and 4 typical spacings of the previous 7
     days (a stream that stopped and came back; one that never comes back has no row to score — that is the
     asset layer's freshness check). Missing data is a data-quality signal more than an incident: it counts
     `GAP_WEIGHT` times the log of the excess.
   Spike and level moves *back towards* the seasonal baseline (the end of an incident) count
   `RECOVERY_WEIGHT`: a recovery is not news.
4. *Calibration*, per component and stream, against the component's own last 4 days: the hourly maxima of
   the magnitude give three anchors, their median ("once in 2 hours"), 90th percentile (once in 10 h) and
   maximum (once in the K hours of history). The surprise of a magnitude is its log return period,
   interpolated linearly in log-magnitude between the anchors and extrapolated past the maximum with the
   shallower of the two slopes (heavy-tailed or lumpy histories extrapolate gently), plus ln(points per hour)
   to count in points. A magnitude the history already reached is therefore at most "once in K hours", and
   one reached at this time of day (±1 h) on one of those days is capped lower (a daily cron peak is not
   news). With fewer than 8 hours of history (a stream's second day) the anchors are the conservative
   `PRIOR_ANCHORS` (magnitudes 4, 6 and 10 for once in 2 h, 10 h and a day) instead of silence.
   Surprise maps to [0, 1) as `L² / (L² + ln(2016)²)`: 1 in 2016 points (a week at 5 min) -> 0.5.
   Volatility, level and sustained are weaker or redundant evidence: their surprise counts 0.8, 0.85, 0.9.
5. *Novelty* (alert suppression), per component: a component keeps its score only where it exceeds its own
   maximum over the earlier points of the current hour and the previous `SUPPRESSION_HOURS` hours by a
   relative margin (`NOVELTY_MARGIN`); in between it is scaled down linearly. So a change scores at its onset
   and a persisting new level (a deploy, a long incident) decays to 0 instead of alerting for hours — under
   windowed (NAB-style) scoring every alert outside a label window costs, and only the first one inside a
   window earns. An unrelated earlier alert of another component does not mute a new one.
6. *Combination*: the largest kept component score (its name is `reason`), then an *echo* step — the same
   novelty rule over the current and previous hour across all components — so one event that trips several
   components on consecutive points alerts once.

Output columns, appended to the input's: `baseline` (the expected value: the seasonal baseline once two
previous days are known, else the median of the previous 5 points), `deviation` (value - baseline, in units
of the scale used for that baseline), `scale` (the noise scale), the calibrated component scores
`score_spike … score_gap` (before novelty), `reason` (the component behind the score; null when it is 0) and
`anomaly_score`. Rows with a missing or non-finite value get score 0 and null features, and are ignored as
data. Input rows need not be sorted (they are returned in the given order) but should be deduplicated.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

LOOKBACK = dt.timedelta(days=14)
LOCAL_CAP = dt.timedelta(hours=12)
BASELINE_DAYS = 7
SEASONAL_DAYS = 7
CALIBRATION_DAYS = 4
SUPPRESSION_HOURS = 6
ECHO_HOURS = 1
NOVELTY_MARGIN = 0.1
DOWN_WEIGHT_UP_IS_BAD = 0.5
RECOVERY_WEIGHT = 0.3
RANGE_UNITS = 10.0  # range excess in tenths of the historical range
RANGE_TAIL = 0.5  # heavy tails: range excess at least in this share of (record - a typical day's extreme)
GAP_WEIGHT = 2.0
STEP_FLOOR = 0.5  # the noise scale is at least this share of the typical non-zero move
FLAT_BONUS = 2.0
RUN_CAP = dt.timedelta(hours=6)  # gaps and constant runs longer than this count as this long

COMPONENTS: tuple[str, ...] = (
    "spike",
    "level",
    "seasonal",
    "sustained",
    "range",
    "volatility",
    "flatline",
    "gap",
)
COMPONENT_WEIGHT: dict[str, float] = {"volatility": 0.8, "level": 0.85, "sustained": 0.9}
# magnitudes below these never score (z-units; tenths of the range for `range`)
MIN_MAGNITUDE: dict[str, float] = {
    "spike": 3.0,
    "level": 3.0,
    "seasonal": 3.0,
    "sustained": 3.0,
    "range": 1.0,
    "volatility": 3.0,
}
OUTPUT_COLUMNS: tuple[str, ...] = (
    "baseline",
    "deviation",
    "scale",
    *(f"score_{c}" for c in COMPONENTS),
    "reason",
    "anomaly_score",
)
_UP_IS_BAD = re.compile(r"latenc|mem|error|err_|fail|timeout|5xx|4xx|queue|wait|retr|reject|exception", re.I)

SURPRISE_HALF = float(np.log(2016.0))
TAIL_SLOPE_MIN = 1.0
TAIL_SLOPE_MAX = 6.0
ANCHOR_FLOOR = 1.0  # anchors of a near-silent component sit at one unit
ANCHOR_GAP = 0.35  # anchors at least this far apart in log-magnitude (x1.4)
MIN_HISTORY_HOURS = 8
PRIOR_ANCHORS = (4.0, 6.0, 10.0, 24.0)  # median, q90 and max of hourly maxima, hours: too little history

_US = 1_000_000
_HOUR_US = 3600 * _US
_DAY_US = 24 * _HOUR_US
_PAD_DAYS = BASELINE_DAYS + 1  # empty days in front of each stream's grid: lookups never cross streams
_MAD_TO_SIGMA = 1.4826
_ABSDIFF_TO_SIGMA = 0.886  # sqrt(pi) / 2: E|x_t - x_t-1| = 2 sigma / sqrt(pi) for Gaussian noise
_CHUNK_ROWS = 1 << 17  # streams are scored in chunks of about this many rows (cache-sized arrays)
_LN2, _LN10 = float(np.log(2.0)), float(np.log(10.0))


def score_points(points: pl.DataFrame) -> pl.DataFrame:
    """Score every row of `points` (`host, metric, timestamp, value`); see the module docstring."""
    frame, order = _normalise(points)
    n = frame.height
    out = {k: np.full(n, np.nan) for k in ("baseline", "deviation", "scale")}
    out.update({c: np.zeros(n) for c in COMPONENTS})
    out["anomaly_score"] = np.zeros(n)
    winner = np.full(n, -1, dtype=np.int64)
    if n:
        _score_into(frame, out, winner)
    reason = pl.Series("reason", winner, dtype=pl.Int64).replace_strict(
        dict(enumerate(COMPONENTS)), default=None, return_dtype=pl.String
    )
    scored = pl.DataFrame(
        [
            pl.Series("baseline", out["baseline"], nan_to_null=True),
            pl.Series("deviation", out["deviation"], nan_to_null=True),
            pl.Series("scale", out["scale"], nan_to_null=True),
            *(pl.Series(f"score_{c}", out[c]) for c in COMPONENTS),
            reason,
            pl.Series("anomaly_score", out["anomaly_score"]),
        ]
    )
    result = pl.concat([frame.drop("_t", "_sid", "_valid"), scored], how="horizontal")
    if order is not None:  # give the rows back in the caller's order
        result = result.with_columns(order.alias("_order")).sort("_order").drop("_order")
    return result


# --------------------------------------------------------------------------------------------------------------
# input


def _normalise(points: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series | None]:
    missing = [c for c in ("host", "metric", "timestamp", "value") if c not in points.columns]
    if missing:
        raise ValueError(f"points lack column(s) {missing}; expected host, metric, timestamp, value")
    clash = [c for c in OUTPUT_COLUMNS if c in points.columns]
    if clash:
        raise ValueError(f"points already have output column(s) {clash}; drop them before scoring")
    ts = points.schema["timestamp"]
    if not isinstance(ts, pl.Datetime):
        raise ValueError(f"timestamp must be a Datetime column (UTC), got {ts}")
    as_utc = (
        pl.col("timestamp").dt.replace_time_zone("UTC")
        if ts.time_zone is None
        else pl.col("timestamp").dt.convert_time_zone("UTC")
    )
    frame = points.with_columns(
        pl.col("host").cast(pl.String),
        pl.col("metric").cast(pl.String),
        as_utc.dt.cast_time_unit("us").alias("timestamp"),
        pl.col("value").cast(pl.Float64),
    ).with_columns(pl.col("timestamp").dt.epoch("us").alias("_t"))
    if frame.height and frame.get_column("_t").null_count():
        raise ValueError("timestamp has nulls; drop or repair those rows before scoring")
    order = None
    if not _is_sorted(frame):
        frame = frame.with_row_index("_order")
        frame = frame.sort("host", "metric", "_t", maintain_order=True)
        order = frame.get_column("_order")
        frame = frame.drop("_order")
    frame = frame.with_columns(
        (pl.col("host").ne_missing(pl.col("host").shift()) | pl.col("metric").ne_missing(pl.col("metric").shift()))
        .cum_sum()
        .cast(pl.Int64)
        .alias("_sid"),
        (pl.col("value").is_not_null() & pl.col("value").is_finite()).alias("_valid"),
    )
    return frame, order


def _is_sorted(frame: pl.DataFrame) -> bool:
    if frame.height < 2:
        return True
    host, metric, t = pl.col("host"), pl.col("metric"), pl.col("_t")
    prev_h, prev_m, prev_t = host.shift(), metric.shift(), t.shift()
    ok = (host > prev_h) | ((host == prev_h) & ((metric > prev_m) | ((metric == prev_m) & (t >= prev_t))))
    return bool(frame.select(ok.slice(1).all()).item())


def _score_into(frame: pl.DataFrame, out: dict[str, np.ndarray], winner: np.ndarray) -> None:
    valid = frame.get_column("_valid").to_numpy()
    all_valid = bool(valid.all())
    rows = np.arange(valid.size) if all_valid else np.flatnonzero(valid)
    if rows.size == 0:
        return
    sid = frame.get_column("_sid").to_numpy()
    t = frame.get_column("_t").to_numpy()
    x = frame.get_column("value").to_numpy()
    if not all_valid:
        sid, t, x = sid[rows], t[rows], x[rows]
    t = t.astype(np.int64, copy=False)
    x = x.astype(np.float64, copy=False)
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    heads = frame.get_column("metric").gather(rows[starts]).to_list()
    up_is_bad = np.array([bool(_UP_IS_BAD.search(str(m))) for m in heads], dtype=bool)
    bounds = np.r_[starts, rows.size]
    first = 0
    while first < starts.size:
        last = first + 1
        while last < starts.size and bounds[last + 1] - bounds[first] <= _CHUNK_ROWS:
            last += 1
        a, b = int(bounds[first]), int(bounds[last])
        res, win = _score_chunk(sid[a:b], t[a:b], x[a:b], up_is_bad[first:last])
        target: slice | np.ndarray = slice(a, b) if all_valid else rows[a:b]
        for key, values in res.items():
            out[key][target] = values
        winner[target] = win
        first = last


# --------------------------------------------------------------------------------------------------------------
# row helpers


def _shift(a: np.ndarray, k: int, fill: float | int = np.nan) -> np.ndarray:
    out = np.empty_like(a)
    k = min(k, a.size)
    out[:k] = fill
    out[k:] = a[: a.size - k]
    return out


def _med3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def _med5(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, e: np.ndarray) -> np.ndarray:
    f = np.maximum(np.minimum(a, b), np.minimum(c, d))
    g = np.minimum(np.maximum(a, b), np.maximum(c, d))
    return _med3(e, f, g)


def _closer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise the value of smaller magnitude (`a` where `b` is NaN)."""
    return np.where(np.abs(b) < np.abs(a), b, a)


# --------------------------------------------------------------------------------------------------------------
# grid helpers: each stream owns whole UTC days of 24 hourly cells, padded in front


def _grid_shift(g: np.ndarray, k: int) -> np.ndarray:
    """g shifted k cells later (cell i gets cell i-k); padding keeps shifts up to the pad inside a stream."""
    return _shift(g, k) if k >= 0 else np.r_[g[-k:], np.full(-k, np.nan)]


def _daily_max(g: np.ndarray) -> np.ndarray:
    return np.fmax.reduce(g.reshape(-1, 24), axis=1)


def _daily_count(g: np.ndarray) -> np.ndarray:
    return 24.0 - np.count_nonzero(np.isnan(g.reshape(-1, 24)), axis=1)


def _daily_quantiles(g: np.ndarray, with_q90: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per day: median (mean of the middle two) and 90th percentile (lower) of the non-NaN cells."""
    grid = g.reshape(-1, 24)
    srt = np.sort(grid, axis=1)  # NaN sort last
    cnt = 24 - np.count_nonzero(np.isnan(grid), axis=1)
    last = np.maximum(cnt - 1, 0)
    rows = np.arange(grid.shape[0])
    med = (srt[rows, last // 2] + srt[rows, (last + 1) // 2]) / 2.0
    med = np.where(cnt > 0, med, np.nan)
    q90 = np.where(cnt > 0, srt[rows, (9 * last) // 10], np.nan) if with_q90 else med
    return med, q90


def _prev_days(stat: np.ndarray, days: int, how: str) -> np.ndarray:
    """Per day d, `how` (max, sum or median) of `stat` over days d-days .. d-1, ignoring NaN."""
    n = stat.size
    if how == "max":
        acc = np.full(n, np.nan)
        for k in range(1, min(days, n) + 1):
            acc[k:] = np.fmax(acc[k:], stat[: n - k])
        return acc
    if how == "sum":
        tot = np.zeros(n)
        for k in range(1, min(days, n) + 1):
            tot[k:] += np.nan_to_num(stat[: n - k])
        return tot
    stack = np.full((n, days), np.nan)
    for k in range(1, min(days, n) + 1):
        stack[k:, k - 1] = stat[: n - k]
    return _nan_median_rows(stack)[0]


def _nan_median_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row medians ignoring NaN (mean of the two middle values), and the count of valid values."""
    srt = np.sort(m, axis=1)
    valid = m.shape[1] - np.count_nonzero(np.isnan(m), axis=1)
    rows = np.arange(m.shape[0])
    med = (srt[rows, np.maximum((valid - 1) // 2, 0)] + srt[rows, np.minimum(valid // 2, m.shape[1] - 1)]) / 2.0
    return np.where(valid > 0, med, np.nan), valid


def _same_hour_samples(g: np.ndarray, days: int) -> np.ndarray:
    """(cells, days): the cell at the same hour 1..days days earlier."""
    out = np.full((g.size, days), np.nan)
    for k in range(1, days + 1):
        out[24 * k :, k - 1] = g[: g.size - 24 * k]
    return out


# --------------------------------------------------------------------------------------------------------------
# calibration


@dataclass
class _Anchors:
    """Per-day parameters of the piecewise-linear log-magnitude -> log-return-period map."""

    l50: np.ndarray
    l90: np.ndarray
    lmx: np.ndarray
    lk: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    slope: np.ndarray


def _anchors(cell_max: np.ndarray) -> _Anchors:
    """Anchors from the hourly maxima of a component over the CALIBRATION_DAYS complete days before each day."""
    med_d, q90_d = _daily_quantiles(cell_max, with_q90=True)
    med = _prev_days(med_d, CALIBRATION_DAYS, "median")
    q90 = _prev_days(q90_d, CALIBRATION_DAYS, "median")
    xmax = _prev_days(_daily_max(cell_max), CALIBRATION_DAYS, "max")
    hours = _prev_days(_daily_count(cell_max), CALIBRATION_DAYS, "sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        l50 = np.log(np.fmax(med, ANCHOR_FLOOR))
        l90 = np.fmax(np.log(np.fmax(q90, ANCHOR_FLOOR)), l50 + ANCHOR_GAP)
        lmx = np.fmax(np.log(np.fmax(xmax, ANCHOR_FLOOR)), l90 + ANCHOR_GAP)
        lk = np.log(np.maximum(hours, float(MIN_HISTORY_HOURS)))
        lower = (_LN10 - _LN2) / (l90 - l50)
        upper = (lk - _LN10) / (lmx - l90)
    slope = np.clip(np.fmin(lower, upper), TAIL_SLOPE_MIN, TAIL_SLOPE_MAX)
    prior = hours < MIN_HISTORY_HOURS  # too little history: a conservative prior instead of silence
    p50, p90, pmx, phours = (float(np.log(v)) for v in PRIOR_ANCHORS)
    l50 = np.where(prior, p50, l50)
    l90 = np.where(prior, p90, l90)
    lmx = np.where(prior, pmx, lmx)
    lk = np.where(prior, phours, lk)
    lower = np.where(prior, (_LN10 - _LN2) / (p90 - p50), lower)
    upper = np.where(prior, (phours - _LN10) / (pmx - p90), upper)
    slope = np.where(prior, np.clip(np.fmin(lower, upper), TAIL_SLOPE_MIN, TAIL_SLOPE_MAX), slope)
    return _Anchors(l50, l90, lmx, lk, lower, upper, slope)


def _surprise(lm: np.ndarray, day: np.ndarray, a: _Anchors) -> np.ndarray:
    """Log return period (hours) of log-magnitudes `lm` observed on grid days `day`."""
    l50, l90, lmx, lk = a.l50[day], a.l90[day], a.lmx[day], a.lk[day]
    low = _LN2 + (lm - l50) * a.lower[day]
    mid = _LN10 + (lm - l90) * a.upper[day]
    high = lk + (lm - lmx) * a.slope[day]
    lrp = np.where(lm <= l90, low, np.where(lm <= lmx, mid, high))
    lrp = np.where(lm >= l50, lrp, 0.0)
    return np.clip(np.nan_to_num(lrp, nan=0.0), 0.0, 50.0)


def _to_unit(lrp: np.ndarray) -> np.ndarray:
    sq = lrp * lrp
    return sq / (sq + SURPRISE_HALF * SURPRISE_HALF)


# --------------------------------------------------------------------------------------------------------------
# the scorer


def _score_chunk(
    sid: np.ndarray, t: np.ndarray, x: np.ndarray, up_is_bad_stream: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    n = t.size
    idx = np.arange(n)
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    lengths = np.diff(np.r_[starts, n])
    pos = idx - np.repeat(starts, lengths)

    # ---- local context: previous points of the same stream within LOCAL_CAP
    cap = int(LOCAL_CAP.total_seconds() * _US)
    # ok[k]: row i-k is of the same stream and at most LOCAL_CAP older than row i
    ok = {k: (pos >= k) & (t - _shift(t, k, 0) <= cap) for k in (1, 2, 3, 4, 5, 6, 9, 18)}
    xp = [x] + [np.where(ok[k], _shift(x, k), np.nan) for k in range(1, 6)]
    prev5 = _med5(xp[1], xp[2], xp[3], xp[4], xp[5])
    prev5_lag2 = np.where(ok[2], _shift(prev5, 2), np.nan)
    last3 = _med3(xp[0], xp[1], xp[2])
    # ~median of the last 9 and 27 points: medians of medians of 3 (cheap, robust, exact)
    last9 = _med3(last3, np.where(ok[3], _shift(last3, 3), np.nan), np.where(ok[6], _shift(last3, 6), np.nan))
    last27 = _med3(last9, np.where(ok[9], _shift(last9, 9), np.nan), np.where(ok[18], _shift(last9, 18), np.nan))
    absdiff = np.abs(x - xp[1])  # NaN without a recent previous point
    local_vol = _med5(absdiff, _shift(absdiff, 1), _shift(absdiff, 2), _shift(absdiff, 3), _shift(absdiff, 4))
    local_vol = np.where(ok[4], local_vol, np.nan)
    run_cap = int(RUN_CAP.total_seconds() * _US)
    dt_prev = np.where(pos >= 1, np.minimum(t - _shift(t, 1, 0), run_cap), run_cap).astype(np.float64)
    run_start = np.maximum.accumulate(np.where(x != xp[1], idx, 0))  # NaN compares unequal: a new run
    flat_us = np.minimum(t - t[run_start], run_cap).astype(np.float64)

    # ---- grid of hourly cells
    cell_abs = t // _HOUR_US
    day_abs = cell_abs // 24
    first_day = day_abs[starts] - _PAD_DAYS
    n_days = day_abs[np.r_[starts[1:], n] - 1] - first_day + 2  # one spare day at the end
    day_offset = np.r_[0, np.cumsum(n_days)[:-1]]
    row_day = np.repeat(day_offset - first_day, lengths) + day_abs
    cell = row_day * 24 + cell_abs % 24
    n_cells = int(n_days.sum()) * 24
    cell_starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    cell_ids = cell[cell_starts]
    per_cell = np.diff(np.r_[cell_starts, n]).astype(np.float64)

    def grid(values: np.ndarray) -> np.ndarray:
        g = np.full(n_cells, np.nan)
        g[cell_ids] = values
        return g

    c_sum = np.add.reduceat(x, cell_starts)
    c_min = np.fmin.reduceat(x, cell_starts)
    c_max = np.fmax.reduceat(x, cell_starts)
    trimmed = np.where(per_cell >= 3, (c_sum - c_min - c_max) / np.maximum(per_cell - 2, 1), c_sum / per_cell)
    d_ok = ~np.isnan(absdiff)
    d_cnt = np.add.reduceat(d_ok.astype(np.float64), cell_starts)
    d_sum = np.add.reduceat(np.where(d_ok, absdiff, 0.0), cell_starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_diff = grid(np.where(d_cnt > 0, d_sum / d_cnt, np.nan))
    g_level = grid(trimmed)
    # the typical size of a non-zero move: the resolution of quantised streams (integer counts, 1 % steps)
    nz = d_ok & (absdiff > 0)
    nz_cnt = np.add.reduceat(nz.astype(np.float64), cell_starts)
    nz_sum = np.add.reduceat(np.where(nz, absdiff, 0.0), cell_starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_step = grid(np.where(nz_cnt > 0, nz_sum / nz_cnt, np.nan))

    # ---- per-day history over the BASELINE_DAYS complete days before each day
    noise_day = _ABSDIFF_TO_SIGMA * _prev_days(_daily_quantiles(g_diff)[0], BASELINE_DAYS, "median")
    hist_cells = _prev_days(_daily_count(g_diff), BASELINE_DAYS, "sum")
    # the range of the 3- and 9-point medians over the previous days (compared like with like below), and the
    # median of their daily extremes: how far the record sits above a typical day says how heavy the tail is
    ranges = {}
    for key, series in (("3", last3), ("9", last9)):
        day_hi = _daily_max(grid(np.fmax.reduceat(series, cell_starts)))
        day_lo = _daily_max(grid(np.fmax.reduceat(-series, cell_starts)))
        ranges[key] = (
            _prev_days(day_hi, BASELINE_DAYS, "max"),
            _prev_days(day_hi, BASELINE_DAYS, "median"),
            -_prev_days(day_lo, BASELINE_DAYS, "max"),
            -_prev_days(day_lo, BASELINE_DAYS, "median"),
        )
    raw_spread = _prev_days(_daily_max(grid(c_max)), BASELINE_DAYS, "max") + _prev_days(
        _daily_max(grid(-c_min)), BASELINE_DAYS, "max"
    )
    noise_day = np.fmax(noise_day, np.maximum(1e-3 * np.nan_to_num(raw_spread), 1e-9))
    level_mid = _prev_days(_daily_quantiles(g_level)[0], BASELINE_DAYS, "median")
    step_day = _prev_days(_daily_quantiles(g_step)[0], BASELINE_DAYS, "median")
    dt_typ = _prev_days(_daily_quantiles(grid(np.fmin.reduceat(dt_prev, cell_starts)))[0], BASELINE_DAYS, "median")
    dt_max = _prev_days(_daily_max(grid(np.fmax.reduceat(dt_prev, cell_starts))), BASELINE_DAYS, "max")
    flat_max = _prev_days(_daily_max(grid(np.fmax.reduceat(flat_us, cell_starts))), BASELINE_DAYS, "max")
    per_hour = np.fmax(_prev_days(_daily_quantiles(grid(per_cell))[0], BASELINE_DAYS, "median"), 1.0)
    ln_per_hour = np.log(per_hour)
    enough_day = hist_cells >= 3

    # ---- seasonal baseline and hour-of-day noise on the grid
    noise_hour = _ABSDIFF_TO_SIGMA * _nan_median_rows(_same_hour_samples(g_diff, SEASONAL_DAYS))[0]
    samples = _same_hour_samples(g_level, SEASONAL_DAYS)
    sb_cell, sb_n = _nan_median_rows(samples)
    mad_cell = _nan_median_rows(np.abs(samples - sb_cell[:, None]))[0]
    sb_cell = np.where(sb_n >= 2, sb_cell, np.nan)
    wk_cell = _grid_shift(g_level, 24 * SEASONAL_DAYS)

    sigma_d = noise_day[row_day]
    nh = noise_hour[cell]
    sigma = np.where(np.isnan(nh), sigma_d, np.fmax(nh, 0.5 * sigma_d))
    sigma = np.fmax(sigma, STEP_FLOOR * step_day[row_day])
    frac = (t % _HOUR_US) / _HOUR_US - 0.5
    nb = cell + np.where(frac >= 0, 1, -1)
    w = np.abs(frac)

    def interpolated(g: np.ndarray) -> np.ndarray:
        here, there = g[cell], g[nb]
        return np.where(np.isnan(there), here, here + w * (there - here))

    seasonal = interpolated(sb_cell)
    weekly = interpolated(wk_cell)
    season_sigma = np.sqrt(sigma * sigma + (_MAD_TO_SIGMA * mad_cell[cell]) ** 2)

    # ---- component magnitudes
    enough = enough_day[row_day]
    down_w = np.repeat(np.where(up_is_bad_stream, DOWN_WEIGHT_UP_IS_BAD, 1.0), lengths)

    def magnitude(z: np.ndarray) -> np.ndarray:
        return np.where(enough, np.where(z < 0, -z * down_w, z), np.nan)

    normal = np.where(np.isnan(seasonal), weekly, seasonal)
    toward_spike = np.abs(x - normal) < np.abs(prev5 - normal)
    toward_level = np.abs(last3 - normal) < np.abs(prev5_lag2 - normal)
    beyond = np.zeros(n)
    for key, series in (("3", last3), ("9", last9)):
        hi, hi_typ, lo, lo_typ = (a[row_day] for a in ranges[key])
        mid = np.clip(level_mid[row_day], lo, hi)
        unit_hi = np.fmax(np.fmax(2.0 * (hi - mid), 4.0 * sigma) / RANGE_UNITS, RANGE_TAIL * (hi - hi_typ))
        unit_lo = np.fmax(np.fmax(2.0 * (mid - lo), 4.0 * sigma) / RANGE_UNITS, RANGE_TAIL * (lo_typ - lo))
        excess = np.where(series > hi, (series - hi) / unit_hi, np.where(series < lo, (series - lo) / unit_lo, 0.0))
        beyond = np.where(np.abs(excess) > np.abs(beyond), excess, beyond)
    mags = {
        "spike": magnitude((x - prev5) / sigma) * np.where(toward_spike, RECOVERY_WEIGHT, 1.0),
        "level": magnitude((last3 - prev5_lag2) / sigma) * np.where(toward_level, RECOVERY_WEIGHT, 1.0),
        "seasonal": magnitude(_closer((last3 - seasonal) / season_sigma, (last3 - weekly) / season_sigma)),
        "sustained": magnitude(_closer((last27 - seasonal) / season_sigma, (last27 - weekly) / season_sigma)),
        "range": magnitude(beyond),
        "volatility": np.where(enough, local_vol / (sigma / _ABSDIFF_TO_SIGMA) - 1.0, np.nan),
    }

    # ---- sparse surprise: only rows whose magnitude can score are evaluated
    sparse: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, mag in mags.items():
        g_c = grid(np.fmax.reduceat(mag, cell_starts))
        with np.errstate(invalid="ignore"):
            hit = np.flatnonzero(mag >= MIN_MAGNITUDE[name])
        if hit.size == 0:
            continue
        anchors = _anchors(g_c)
        same_hour = np.full(n_cells, np.nan)  # this time of day (±1 h) on the calibration days
        for k in range(1, CALIBRATION_DAYS + 1):
            for s in (-1, 0, 1):
                same_hour = np.fmax(same_hour, _grid_shift(g_c, 24 * k + s))
        m = mag[hit]
        d = row_day[hit]
        lrp = _surprise(np.log(m), d, anchors)
        lrp = np.where(m <= same_hour[cell[hit]], np.fmin(lrp, 0.5 * anchors.lk[d]), lrp)
        sparse[name] = (hit, lrp)
    # flatline: step-shaped, fires once the constant run outgrows twice the longest one of the history
    flat_ref = np.fmax(flat_max, 2.0 * dt_typ)[row_day]
    hit = np.flatnonzero(enough & (sigma > 1e-9) & (flat_us >= 2.0 * flat_ref))
    sparse["flatline"] = (hit, np.log(np.maximum(hist_cells[row_day[hit]], 1.0)) + FLAT_BONUS)
    gap_ref = np.fmax(dt_max, 4.0 * dt_typ)[row_day]
    hit = np.flatnonzero(enough & (dt_prev > gap_ref))
    sparse["gap"] = (hit, GAP_WEIGHT * np.log(dt_prev[hit] / gap_ref[hit]))

    # ---- per point, novelty per component, combination
    res = {c: np.zeros(n) for c in COMPONENTS}
    best = np.zeros(n)
    win = np.full(n, -1, dtype=np.int64)
    for j, name in enumerate(COMPONENTS):
        if name not in sparse or sparse[name][0].size == 0:
            continue
        hit, lrp = sparse[name]
        lrp = np.where(lrp > 0, (lrp + ln_per_hour[row_day[hit]]) * COMPONENT_WEIGHT.get(name, 1.0), 0.0)
        score = _to_unit(lrp)
        res[name][hit] = score
        kept = _novel(score, cell[hit], n_cells, SUPPRESSION_HOURS, NOVELTY_MARGIN)
        better = kept > best[hit]
        best[hit] = np.where(better, kept, best[hit])
        win[hit] = np.where(better, j, win[hit])

    if ECHO_HOURS > 0:  # one event firing several components on consecutive points alerts once
        hit = np.flatnonzero(best > 0)
        if hit.size:
            best[hit] = _novel(best[hit], cell[hit], n_cells, ECHO_HOURS, NOVELTY_MARGIN)
    baseline = np.where(np.isnan(seasonal), prev5, seasonal)
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = (x - baseline) / np.where(np.isnan(seasonal), sigma, season_sigma)
    res.update(baseline=baseline, deviation=deviation, scale=sigma, anomaly_score=best)
    return res, np.where(best > 0, win, -1)


def _novel(score: np.ndarray, cells: np.ndarray, n_cells: int, hours: int, margin: float) -> np.ndarray:
    """Keep a component's score only where it clearly exceeds its recent maximum (the sparse rows `cells`).

    The recent maximum is taken over the earlier rows of the same cell and the previous `hours` cells; rows
    that did not score are 0 and never raise it. A score `margin` (relative) above it is kept whole; between
    the two it is scaled down linearly; at or below it, it is 0.
    """
    # running maximum within each cell, exactly: accumulate integer keys (cell rank, score rank)
    order = np.argsort(score, kind="stable")
    rank = np.empty(score.size, dtype=np.int64)
    rank[order] = np.arange(score.size)
    seg_id = np.cumsum(np.r_[True, cells[1:] != cells[:-1]]).astype(np.int64)
    base = seg_id * (score.size + 1)
    running = score[order][np.maximum.accumulate(base + rank) - base]
    same_cell_before = np.r_[False, cells[1:] == cells[:-1]]
    before = np.where(same_cell_before, _shift(running, 1, 0.0), 0.0)
    seg = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
    g = np.full(n_cells, np.nan)
    g[cells[seg]] = np.maximum.reduceat(score, seg)
    prev_cells = np.full(n_cells, np.nan)
    for k in range(1, hours + 1):
        prev_cells[k:] = np.fmax(prev_cells[k:], g[: n_cells - k])
    recent = np.fmax(before, np.nan_to_num(prev_cells[cells], nan=0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = np.clip((score - recent) / (margin * score), 0.0, 1.0)
    return np.where(score > 0, score * np.nan_to_num(keep, nan=0.0), 0.0)
