"""Attribution models on customer journeys: pure functions on polars frames and numpy, no Dagster.

Two layouts come in:

* touch level: ``touches`` (journey_id, ts, channel) plus ``journeys`` (journey_id, conversions, value,
  nulls, conversion_ts), as the journeys module writes them;
* path level: ``path`` (list[str], channels in order, or an exported ``"a > b"`` string), conversions,
  value, nulls.

Both are turned into one internal layout, ``_Segments``: every journey (or path row) is a slice of one flat
array of integer channel codes, ordered by time. Every model is a few vectorised numpy passes over it:

* heuristic models give each touch a share of its journey (shares sum to 1 per journey), then one weighted
  ``bincount`` per model spreads the journey's conversions and value over channels;
* ``markov`` counts transitions with ``bincount`` and solves the absorbing chain exactly;
* ``shapley`` enumerates coalitions with a subset-sum (zeta) transform over bitmasks.

The touch layout is joined to its journeys and sorted by (journey, ts, input row) in one DuckDB query:
that is the one expensive step (about three quarters of the time on 10M touches). On two cores DuckDB's
hash join + sort took less CPU than polars' join + multi-column sort, and than a polars sort of a packed
int64 key followed by numpy gathers. Only journeys that can matter go in: those with conversions or value,
plus those with nulls when ``markov`` is asked for (non-converting journeys are typically most of them).

Output: ``model, channel, conversions, value`` with one row per model and per channel that appears in the
input (zero credit included), models in the order asked, channels sorted by name.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import duckdb
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "linear_touch",
    "linear_channel",
    "time_decay",
    "position_based",
    "markov",
    "shapley",
)
PATH_MODELS: tuple[str, ...] = tuple(m for m in MODELS if m != "time_decay")
HEURISTIC_MODELS: tuple[str, ...] = tuple(m for m in MODELS if m not in ("markov", "shapley"))
# Above this many channels, Shapley values use the closed form (which is exact too, see shapley_values).
MAX_EXACT_SHAPLEY_CHANNELS = 15

OUTPUT_SCHEMA = pl.Schema(
    {"model": pl.String(), "channel": pl.String(), "conversions": pl.Float64(), "value": pl.Float64()}
)
PATHS_SCHEMA = pl.Schema(
    {"path": pl.List(pl.String()), "conversions": pl.Float64(), "value": pl.Float64(), "nulls": pl.Float64()}
)
SHAPLEY_SCHEMA = pl.Schema({"channel": pl.String(), "conversions": pl.Float64(), "value": pl.Float64()})

Frame = pl.DataFrame | pl.LazyFrame
IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]

_UNITS_PER_DAY = {"ns": 86_400e9, "us": 86_400e6, "ms": 86_400e3}
_WEIGHT_COLUMNS = ("conversions", "value", "nulls")


# --------------------------------------------------------------------------------------------- public API


def parse_path_string(path: str, separator: str = ">") -> list[str]:
    """Split an exported path such as ``"google ads > mailing"`` into its channels, whitespace stripped."""
    channels = [part.strip() for part in path.split(separator)]
    if not path.strip() or any(not channel for channel in channels):
        raise ValueError(f"invalid path {path!r}: expected channels separated by {separator!r}, none empty")
    return channels


def attribute_touches(
    touches: Frame,
    journeys: Frame,
    models: Sequence[str] = MODELS,
    half_life_days: float = 7.0,
    first: float = 0.4,
    last: float = 0.4,
) -> pl.DataFrame:
    """Credit each channel with conversions and value of touch-level journeys, for every model asked.

    Touches are ordered by ``ts`` within a journey; equal timestamps keep their input row order. A journey
    with conversions or value but no touches raises ``ValueError`` (its credit could not be accounted for);
    touches of a journey_id missing from ``journeys`` carry nothing and are ignored. ``value`` may be
    negative (refunds), conversions and nulls may not. ``conversion_ts`` is not read: time-decay shares do
    not depend on it (see ``_time_decay``).
    """
    wanted = _check_models(models, MODELS)
    _check_half_life(half_life_days)
    _check_position_weights(first, last)
    segments = _segments_from_touches(
        touches,
        journeys,
        with_nulls="markov" in wanted,
        with_ts="time_decay" in wanted,
        with_inert=False,
    )
    return _attribute(segments, wanted, half_life_days, first, last)


def attribute_paths(
    paths: Frame,
    models: Sequence[str] = PATH_MODELS,
    first: float = 0.4,
    last: float = 0.4,
) -> pl.DataFrame:
    """Credit each channel with conversions and value of pre-aggregated paths, for every model asked.

    ``path`` is a list of channel names, or a string such as ``"google ads > mailing"``.
    """
    if "time_decay" in ([models] if isinstance(models, str) else list(models)):
        raise ValueError("time_decay needs touch timestamps: use attribute_touches, not attribute_paths")
    wanted = _check_models(models, PATH_MODELS)
    _check_position_weights(first, last)
    return _attribute(_segments_from_paths(paths), wanted, math.nan, first, last)


def markov_removal_effects(paths: Frame) -> dict[str, float]:
    """Exact first-order removal effect of every channel: 1 - P(conversion | channel removed) / P(conversion).

    All zero when the paths hold no conversions (P(conversion) = 0, so the ratio is undefined).
    """
    segments = _segments_from_paths(paths)
    return dict(zip(segments.channels, _removal_effects(segments).tolist(), strict=True))


def shapley_values(paths: Frame, method: Literal["auto", "enumerate", "closed_form"] = "auto") -> pl.DataFrame:
    """Shapley credit (conversions and value) per channel for the game v(S) = total of paths whose set is in S.

    ``v`` is a sum of unanimity games, one per path with channel set T and weight w_T: u_T(S) = w_T if T ⊆ S
    else 0. The Shapley value is linear, and that of u_T gives w_T / |T| to each member of T. So the exact
    value is "split each path equally among its distinct channels", which is ``linear_channel``.

    ``auto`` enumerates all 2^n coalitions (zeta transform over bitmasks) for n <= 15 channels with
    credit, and uses that closed form above: it is not an approximation, its error is 0 (up to float
    rounding). Tests check both agree.
    """
    if method not in ("auto", "enumerate", "closed_form"):
        raise ValueError(f"unknown Shapley method {method!r}: use 'auto', 'enumerate' or 'closed_form'")
    segments = _segments_from_paths(paths)
    credit = _shapley(segments, method)
    return pl.DataFrame(
        {"channel": segments.channels, "conversions": credit[:, 0], "value": credit[:, 1]},
        schema=SHAPLEY_SCHEMA,
    )


def aggregate_paths(touches: Frame, journeys: Frame) -> pl.DataFrame:
    """Collapse touch-level journeys into distinct paths with summed conversions, value and nulls.

    Journeys without touches have no path: they are skipped when they carry only nulls, and raise
    ``ValueError`` when they carry conversions or value. Rows are sorted by path.
    """
    segments = _segments_from_touches(touches, journeys, with_nulls=True, with_ts=False, with_inert=True)
    if segments.n_segments == 0:
        return pl.DataFrame(schema=PATHS_SCHEMA)
    # A path's key is the bytes of its channel codes, big-endian so that byte order is code order and the
    # sort below is by channel names.
    width = 1 if len(segments.channels) <= 2**8 else 2 if len(segments.channels) <= 2**16 else 4
    data = segments.codes.astype(f">u{width}").tobytes()
    offsets = np.concatenate(([0], np.cumsum(segments.lengths) * width)).astype(np.int64)
    keys = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), segments.n_segments, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    grouped = (
        pl.DataFrame(
            {
                "key": pl.from_arrow(keys),
                "segment": np.arange(segments.n_segments),
                "conversions": segments.conversions,
                "value": segments.value,
                "nulls": segments.nulls,
            }
        )
        .group_by("key")
        .agg(pl.col("segment").first(), pl.col(*_WEIGHT_COLUMNS).sum())
        .sort("key")
    )
    rep = grouped.get_column("segment").to_numpy()
    lengths = segments.lengths[rep]
    new_offsets = np.concatenate(([0], np.cumsum(lengths)))
    gather = np.repeat(segments.starts[rep] - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    names = pa.array(segments.channels, pa.large_string()).take(pa.array(segments.codes[gather]))
    path = pa.LargeListArray.from_arrays(pa.array(new_offsets, pa.int64()), names)
    return grouped.select(pl.Series("path", pl.from_arrow(path)), *_WEIGHT_COLUMNS).cast(PATHS_SCHEMA)


# --------------------------------------------------------------------------------------- internal layout


@dataclass(eq=False)
class _Segments:
    """Channel sequences in one flat array: segment i is ``codes[starts[i] : starts[i] + lengths[i]]``.

    ``channels`` maps code to name (sorted). ``ts`` (touch layout only) is ascending within a segment.
    """

    channels: list[str]
    codes: IntArray
    starts: IntArray
    lengths: IntArray
    conversions: FloatArray
    value: FloatArray
    nulls: FloatArray
    ts: npt.NDArray[np.int64] | None = None
    units_per_day: float = field(default=_UNITS_PER_DAY["us"])

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def n_segments(self) -> int:
        return len(self.starts)

    @cached_property
    def ends(self) -> IntArray:
        """Index of the last touch of each segment."""
        return self.starts + self.lengths - 1

    @cached_property
    def segment_of_touch(self) -> IntArray:
        return np.repeat(np.arange(self.n_segments), self.lengths)

    @cached_property
    def weights(self) -> FloatArray:
        """Conversions and value per segment, shape (segments, 2)."""
        return np.stack([self.conversions, self.value], axis=1)

    @cached_property
    def channel_masks(self) -> list[npt.NDArray[np.uint64]]:
        """Per 64-channel block, the bitmask of the block's channels that occur in each segment."""
        masks = []
        for block in range((self.n_channels + 63) // 64):
            bit_of_code = np.zeros(self.n_channels, dtype=np.uint64)
            in_block = np.arange(block * 64, min(block * 64 + 64, self.n_channels))
            bit_of_code[in_block] = np.left_shift(np.uint64(1), (in_block - block * 64).astype(np.uint64))
            masks.append(np.bitwise_or.reduceat(bit_of_code[self.codes], self.starts))
        return masks


def _empty_segments(channels: list[str]) -> _Segments:
    no_int: IntArray = np.zeros(0, dtype=np.intp)
    no_float: FloatArray = np.zeros(0)
    return _Segments(channels, no_int, no_int, no_int, no_float, no_float, no_float)


def _segments_from_paths(paths: Frame) -> _Segments:
    frame = paths.lazy().select("path", *_WEIGHT_COLUMNS).collect()
    path_type = frame.schema["path"]
    if path_type == pl.String:  # "a > b > c", split and stripped like parse_path_string
        frame = frame.with_columns(pl.col("path").str.split(">").list.eval(pl.element().str.strip_chars()))
    elif not isinstance(path_type, pl.List):
        raise ValueError(f"paths.path must be a list of channel names or a 'a > b' string, got {path_type}")
    weights = _checked_weights(frame, "paths")
    if frame.height == 0:
        return _empty_segments([])
    path = frame.get_column("path").cast(pl.List(pl.String))
    lengths = path.list.len()
    if path.null_count() or (lengths == 0).any():
        raise ValueError("every path needs at least one channel: found null or empty paths")
    flat = path.explode()
    if flat.null_count():
        raise ValueError("paths contain null channel names")
    channels = _channel_names(flat, "paths")
    starts = np.concatenate(([0], np.cumsum(lengths.to_numpy())[:-1])).astype(np.intp)
    return _Segments(
        channels=channels,
        codes=flat.cast(pl.Enum(channels)).to_physical().to_numpy().astype(np.intp),
        starts=starts,
        lengths=lengths.to_numpy().astype(np.intp),
        conversions=weights[0],
        value=weights[1],
        nulls=weights[2],
    )


def _segments_from_touches(
    touches: Frame, journeys: Frame, *, with_nulls: bool, with_ts: bool, with_inert: bool
) -> _Segments:
    """Sort touches by (journey, ts, input row) in DuckDB and cut them into one segment per journey.

    Only journeys with conversions or value take part, plus those with nulls if ``with_nulls``, plus all
    others if ``with_inert``: the rest cannot change any credit. Touches whose journey_id is not in
    ``journeys`` are inert too (they carry no conversions, value or nulls) and are left out; referential
    integrity is the journeys contract's job, and checking it here would cost a second 10M-row join.
    """
    t = touches.lazy().select("journey_id", "ts", "channel").collect()
    j = journeys.lazy().select("journey_id", *_WEIGHT_COLUMNS).collect()
    for column in ("journey_id", "ts", "channel"):
        if t.get_column(column).null_count():
            raise ValueError(f"touches.{column} has null values")
    ts_type = t.schema["ts"]
    if not isinstance(ts_type, pl.Datetime):
        raise ValueError(f"touches.ts must be a Datetime, got {ts_type}")
    key_type = _journey_key_type(t.schema["journey_id"])
    if key_type != _journey_key_type(j.schema["journey_id"]):
        raise ValueError(
            f"journey_id types differ: touches {t.schema['journey_id']}, journeys {j.schema['journey_id']}"
        )
    journey_ids = j.get_column("journey_id").cast(key_type)
    if journey_ids.null_count():
        raise ValueError("journeys.journey_id has null values")
    conversions, value, nulls = _checked_weights(j, "journeys")
    carries_credit = (conversions != 0) | (value != 0)
    keep = carries_credit | (nulls != 0) if with_nulls else carries_credit
    if with_inert:
        keep = np.ones(j.height, dtype=bool)

    channel = t.get_column("channel").cast(pl.String)
    channels = _channel_names(channel, "touches")
    touch_codes = pl.DataFrame(
        {
            "journey_id": t.get_column("journey_id").cast(key_type),
            "code": channel.cast(pl.Enum(channels)).to_physical(),
            "ts": t.get_column("ts").to_physical(),
        }
    ).with_row_index("rid")
    kept_ids = journey_ids.filter(keep)
    if kept_ids.n_unique() != len(kept_ids):
        raise ValueError("journeys.journey_id must be unique")
    # int32 row numbers make DuckDB's sort key 4 bytes shorter, which is ~20% of the sort
    row_type = pl.Int32 if j.height < 2**31 else pl.Int64
    journey_index = pl.DataFrame({"journey_id": kept_ids, "jrow": pl.Series(np.flatnonzero(keep)).cast(row_type)})
    del t, channel
    ts_column = ", t.ts" if with_ts else ""
    query = f"""
        SELECT j.jrow, t.code{ts_column}
        FROM touch_codes AS t JOIN journey_index AS j USING (journey_id)
        ORDER BY j.jrow, t.ts, t.rid
    """
    with _duckdb().cursor() as con:
        # Arrow string views pass journey ids to DuckDB without the copy that registering polars frames makes.
        newest = pl.CompatLevel.newest()
        con.register("touch_codes", touch_codes.to_arrow(compat_level=newest))
        con.register("journey_index", journey_index.to_arrow(compat_level=newest))
        sorted_touches = con.sql(query).fetchnumpy()
    jrow = sorted_touches["jrow"]
    starts = np.flatnonzero(jrow[1:] != jrow[:-1]) + 1
    starts = np.concatenate(([0], starts)).astype(np.intp) if len(jrow) else starts.astype(np.intp)
    has_touches = np.zeros(j.height, dtype=bool)
    has_touches[jrow[starts]] = True
    missing = carries_credit & ~has_touches
    if missing.any():
        example = journey_ids.filter(missing).head(3).to_list()
        raise ValueError(
            f"{int(missing.sum())} journeys carry conversions or value but have no touches, e.g. {example}"
        )
    journey = jrow[starts]
    return _Segments(
        channels=channels,
        codes=np.asarray(sorted_touches["code"], dtype=np.intp),
        starts=starts,
        lengths=np.diff(np.append(starts, len(jrow))).astype(np.intp),
        conversions=conversions[journey],
        value=value[journey],
        nulls=nulls[journey],
        ts=np.asarray(sorted_touches["ts"], dtype=np.int64) if with_ts else None,
        units_per_day=_UNITS_PER_DAY[ts_type.time_unit],
    )


_connection: tuple[int, duckdb.DuckDBPyConnection] | None = None


def _duckdb() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process; callers take a cursor, which costs ~1 ms against ~20 ms to connect.

    Keyed by pid so that a forked worker never shares its parent's DuckDB threads.
    """
    global _connection
    if _connection is None or _connection[0] != os.getpid():
        _connection = (os.getpid(), duckdb.connect(":memory:"))
    return _connection[1]


def _journey_key_type(dtype: pl.DataType) -> pl.DataType:
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.String()
    if dtype.is_integer():
        return pl.Int64()
    raise ValueError(f"journey_id must be a string or an integer, got {dtype}")


def _checked_weights(frame: pl.DataFrame, name: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    arrays = []
    for column in _WEIGHT_COLUMNS:
        if not frame.schema[column].is_numeric():
            raise ValueError(f"{name}.{column} must be numeric, got {frame.schema[column]}")
        values = frame.get_column(column).cast(pl.Float64)
        if values.null_count() or not np.isfinite(values.to_numpy()).all():
            raise ValueError(f"{name}.{column} must be finite and not null")
        if column != "value" and (values < 0).any():
            raise ValueError(f"{name}.{column} must not be negative")
        arrays.append(values.to_numpy().astype(np.float64, copy=False))
    return arrays[0], arrays[1], arrays[2]


def _channel_names(channel: pl.Series, name: str) -> list[str]:
    channels: list[str] = channel.unique().sort().to_list()
    if "" in channels:
        raise ValueError(f"{name} contain an empty channel name (a path like 'a > > b'?)")
    return channels


def _check_models(models: Sequence[str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    wanted = (models,) if isinstance(models, str) else tuple(models)
    unknown = [m for m in wanted if m not in allowed]
    if unknown:
        raise ValueError(f"unknown attribution model(s) {unknown}: choose from {list(allowed)}")
    if not wanted:
        raise ValueError(f"no attribution model asked for: choose from {list(allowed)}")
    return tuple(dict.fromkeys(wanted))


def _check_half_life(half_life_days: float) -> None:
    if not (math.isfinite(half_life_days) and half_life_days > 0):
        raise ValueError(f"half_life_days must be a positive number of days, got {half_life_days}")


def _check_position_weights(first: float, last: float) -> None:
    for label, weight in (("first", first), ("last", last)):
        if not (math.isfinite(weight) and 0 <= weight <= 1):
            raise ValueError(f"position_based weight {label} must be between 0 and 1, got {weight}")
    if first + last > 1 + 1e-12:
        raise ValueError(f"position_based weights first + last must be at most 1, got {first} + {last}")


# ------------------------------------------------------------------------------------------------ models


def _attribute(
    segments: _Segments, models: tuple[str, ...], half_life_days: float, first: float, last: float
) -> pl.DataFrame:
    if segments.n_channels == 0:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    credits = []
    for model in models:
        if model == "markov":
            credit = _markov_credit(_removal_effects(segments), segments)
        elif model == "shapley":
            credit = _shapley(segments, "auto")
        elif model == "linear_channel":
            credit = _linear_channel(segments)
        elif model in ("first_touch", "last_touch"):
            at = segments.starts if model == "first_touch" else segments.ends
            credit = _spread(segments.codes[at], segments.weights, segments.n_channels)
        elif model == "linear_touch":
            credit = _spread_touches(segments, None, 1.0 / segments.lengths)
        elif model == "position_based":
            credit = _position_based(segments, first, last)
        else:
            credit = _time_decay(segments, half_life_days)
        credits.append(credit)
    k = segments.n_channels
    stacked = np.concatenate(credits)
    return pl.DataFrame(
        {
            "model": np.repeat(models, k),
            "channel": segments.channels * len(models),
            "conversions": stacked[:, 0],
            "value": stacked[:, 1],
        },
        schema=OUTPUT_SCHEMA,
    )


def _bincount(codes: IntArray, weights: FloatArray, minlength: int) -> FloatArray:
    """Weighted bincount that stays float64 when there is nothing to count."""
    return np.bincount(codes, weights=weights, minlength=minlength).astype(np.float64, copy=False)


def _spread(codes: IntArray, weights: FloatArray, n_channels: int) -> FloatArray:
    """Sum rows of ``weights`` (n, 2) by channel code: the (channels, 2) credit."""
    return np.stack([_bincount(codes, weights=weights[:, i], minlength=n_channels) for i in range(2)], axis=1)


def _spread_touches(segments: _Segments, touch_factor: FloatArray | None, segment_factor: FloatArray) -> FloatArray:
    """Credit when touch t of segment s gets touch_factor[t] * segment_factor[s] of the segment.

    Written to make few 10M-element temporaries: on touch-level input every one costs page faults.
    """
    credit = np.empty((segments.n_channels, 2))
    for i, per_segment in enumerate((segments.conversions, segments.value)):
        per_touch = (per_segment * segment_factor)[segments.segment_of_touch]
        if touch_factor is not None:
            per_touch *= touch_factor
        credit[:, i] = _bincount(segments.codes, per_touch, segments.n_channels)
    return credit


def _position_based(segments: _Segments, first: float, last: float) -> FloatArray:
    """40/20/40 by default: ``first`` and ``last`` to the end touches, the rest split over the middle ones.

    A two-touch journey has no middle: its ends get first/(first+last) and last/(first+last) (50/50 by
    default, and 50/50 when both weights are 0). A one-touch journey gets everything.
    """
    n = segments.lengths
    middle = np.where(n >= 3, max(0.0, 1.0 - first - last) / np.maximum(n - 2, 1), 0.0)
    pair_first = first / (first + last) if first + last > 0 else 0.5
    first_share = np.where(n >= 3, first, pair_first)
    last_share = np.where(n >= 3, last, np.where(n == 2, 1.0 - pair_first, 1.0))  # n = 1: first == last
    credit = np.empty((segments.n_channels, 2))
    for i, per_segment in enumerate((segments.conversions, segments.value)):
        per_touch = (per_segment * middle)[segments.segment_of_touch]
        per_touch[segments.starts] = per_segment * first_share
        per_touch[segments.ends] = per_segment * last_share
        credit[:, i] = _bincount(segments.codes, per_touch, segments.n_channels)
    return credit


def _time_decay(segments: _Segments, half_life_days: float) -> FloatArray:
    """Weight 2^(-(conversion_ts - ts) / half_life), normalised within the journey.

    The conversion time is a common factor 2^(-conversion_ts / half_life) of every weight in a journey, so it
    cancels in the normalisation. Measuring from the journey's last touch instead gives the same shares,
    needs no conversion_ts, and cannot underflow: the last touch weighs 1, so the sum is at least 1.
    """
    if segments.ts is None:
        raise ValueError("time_decay needs touch timestamps: use attribute_touches")
    weights = segments.ts[segments.ends][segments.segment_of_touch]
    np.subtract(segments.ts, weights, out=weights)  # <= 0: age of the touch, in ts units, negated
    decay = weights.astype(np.float64)
    del weights
    decay *= 1.0 / (segments.units_per_day * half_life_days)
    np.exp2(decay, out=decay)
    return _spread_touches(segments, decay, 1.0 / np.add.reduceat(decay, segments.starts))


def _linear_channel(segments: _Segments) -> FloatArray:
    """Each segment's weight split equally among its distinct channels (also the exact Shapley value)."""
    k = segments.n_channels
    if segments.n_segments == 0:
        return np.zeros((k, 2))
    masks = segments.channel_masks
    distinct = sum(np.bitwise_count(mask).astype(np.int64) for mask in masks)
    per_channel = segments.weights / np.asarray(distinct)[:, None]
    if k <= 16:  # few channels: sum segments by channel set first, then spread each set over its members
        by_set = _spread(masks[0].astype(np.intp), per_channel, 1 << k)
        members = (np.arange(1 << k)[:, None] >> np.arange(k)) & 1
        return np.asarray(members.T @ by_set, dtype=np.float64)
    credit = np.zeros((k, 2))
    for code in range(k):
        present = (masks[code // 64] >> np.uint64(code % 64)) & np.uint64(1) == 1
        credit[code] = per_channel[present].sum(axis=0)
    return credit


def _removal_effects(segments: _Segments) -> FloatArray:
    """Exact removal effects of the first-order absorbing Markov chain.

    States: start (0), channel c (c + 1), conversion (k + 1), null (k + 2). With N = (I - Q)^-1 the
    fundamental matrix of the transient states and x = N r the conversion probabilities, removing c (every
    transition into c goes to null) loses exactly the conversions of the walks that visit c:
    P(conv | c removed) = x_start - P(visit c) * x_c, and P(visit c) = N[start, c] / N[c, c]. So
    RE(c) = N[start, c] * x_c / (N[c, c] * x_start): one inverse for all channels, no per-channel solve.
    """
    k = segments.n_channels
    effects = np.zeros(k)
    if not segments.conversions.sum() > 0:
        return effects
    width = k + 3
    weight = segments.conversions + segments.nulls
    codes = segments.codes
    # every touch to the next one (state = code + 1); pairs that cross into the next segment weigh 0
    pair_weight = weight[segments.segment_of_touch[:-1]]
    pair_weight[segments.ends[:-1]] = 0.0
    pairs = codes[:-1] * width
    pairs += codes[1:]
    pairs += width + 1
    counts = _bincount(pairs, weights=pair_weight, minlength=(k + 1) * width).reshape(k + 1, width)
    del pairs, pair_weight
    first_state, last_state = codes[segments.starts] + 1, codes[segments.ends] + 1
    counts[0, : k + 1] += _bincount(first_state, weights=weight, minlength=k + 1)
    counts[:, k + 1] += _bincount(last_state, weights=segments.conversions, minlength=k + 1)
    counts[:, k + 2] += _bincount(last_state, weights=segments.nulls, minlength=k + 1)
    out = counts.sum(axis=1)
    # Channels seen only in weightless journeys have no transitions: leave them out (effect 0).
    active = np.flatnonzero(out > 0)
    q = counts[np.ix_(active, active)] / out[active, None]
    r = counts[active, k + 1] / out[active]
    fundamental = np.linalg.inv(np.eye(len(active)) - q)
    x = fundamental @ r
    ratio = fundamental[0] * x / (np.diag(fundamental) * x[0])
    effects[active[1:] - 1] = np.clip(ratio[1:], 0.0, 1.0)
    return effects


def _markov_credit(effects: FloatArray, segments: _Segments) -> FloatArray:
    """Total conversions and value shared in proportion to the removal effects.

    No conversions: every credit is 0 (the effects are undefined). With conversions the sum of effects is
    positive (the last channel of a converting path converts and is reached from start), so a zero sum can
    only come from float underflow in a pathological chain: then fall back to ``linear_channel`` credit,
    with a RuntimeWarning.
    """
    totals = segments.weights.sum(axis=0)
    if not totals[0] > 0:
        return np.zeros((segments.n_channels, 2))
    effect_sum = effects.sum()
    if not effect_sum > 0:
        warnings.warn(
            "Markov removal effects sum to 0 despite conversions; using linear_channel credit instead",
            RuntimeWarning,
            stacklevel=3,
        )
        return _linear_channel(segments)
    return np.outer(effects / effect_sum, totals)


def _shapley(segments: _Segments, method: str) -> FloatArray:
    """Exact Shapley credit; see ``shapley_values`` for why the closed form is exact."""
    k = segments.n_channels
    carries = (segments.conversions != 0) | (segments.value != 0)
    # Channels only in weightless segments are null players (0) and stay out of the enumeration.
    players = np.unique(segments.codes[np.repeat(carries, segments.lengths)])
    n = len(players)
    closed_form = method == "closed_form" or (method == "auto" and n > MAX_EXACT_SHAPLEY_CHANNELS)
    if closed_form or n == 0:
        return _linear_channel(segments)
    if n > 20:
        raise ValueError(f"enumerating Shapley coalitions of {n} channels is too large (2^{n}); use 'auto'")
    channel_masks = [mask[carries] for mask in segments.channel_masks]
    if n == k:  # every channel is a player: channel bits are player bits
        masks = channel_masks[0].astype(np.intp)
    else:  # renumber the channel bits to player bits 0 .. n-1
        masks = np.zeros(int(carries.sum()), dtype=np.intp)
        for player, code in enumerate(players.tolist()):
            present = (channel_masks[code // 64] >> np.uint64(code % 64)) & np.uint64(1)
            masks |= present.astype(np.intp) << player
    phi = _shapley_enumerated(masks, segments.weights[carries], n)
    credit = np.zeros((k, 2))
    credit[players] = phi
    return credit


def _shapley_enumerated(masks: IntArray, weights: FloatArray, n: int) -> FloatArray:
    """Shapley values of v(S) = sum of weights of the masks contained in S, over all 2^n coalitions."""
    size = 1 << n
    v = _spread(masks, weights, size)
    for i in range(n):  # zeta transform: v[S] = sum over T ⊆ S of w[T]
        view = v.reshape(-1, 2, 1 << i, 2)
        view[:, 1] += view[:, 0]
    coalition_size = np.bitwise_count(np.arange(size, dtype=np.uint32)).astype(np.intp)
    # |S|! (n - |S| - 1)! / n! for a coalition S without the player
    coefficient = np.array([1.0 / (n * math.comb(n - 1, s)) for s in range(n)])
    phi = np.empty((n, 2))
    for i in range(n):
        view = v.reshape(-1, 2, 1 << i, 2)
        without = coalition_size.reshape(-1, 2, 1 << i)[:, 0]
        phi[i] = np.einsum("ab,abk->k", coefficient[without], view[:, 1] - view[:, 0])
    return phi
