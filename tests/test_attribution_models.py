"""Attribution models against hand-computed answers and properties (hypothesis)."""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.marketing import attribution_models as am

UTC = dt.UTC
T0 = dt.datetime(2025, 3, 1, tzinfo=UTC)
DAY = dt.timedelta(days=1)
Row = tuple[list[str], float, float, float]  # path, conversions, value, nulls

TOUCH_SCHEMA = pl.Schema({"journey_id": pl.String(), "ts": pl.Datetime("us", "UTC"), "channel": pl.String()})
JOURNEY_SCHEMA = pl.Schema(
    {
        "journey_id": pl.String(),
        "conversions": pl.Float64(),
        "value": pl.Float64(),
        "nulls": pl.Float64(),
        "conversion_ts": pl.Datetime("us", "UTC"),
    }
)


def paths_frame(rows: list[Row]) -> pl.DataFrame:
    return pl.DataFrame(
        [(list(p), c, v, n) for p, c, v, n in rows],
        schema=am.PATHS_SCHEMA,
        orient="row",
    )


def touch_frames(rows: list[Row], step: dt.timedelta = dt.timedelta(hours=1)) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One journey per row, touches `step` apart, conversion one step after the last touch."""
    touches, journeys = [], []
    for i, (path, conversions, value, nulls) in enumerate(rows):
        touches += [(f"j{i}", T0 + k * step, channel) for k, channel in enumerate(path)]
        converted = T0 + len(path) * step if conversions > 0 else None
        journeys.append((f"j{i}", conversions, value, nulls, converted))
    return (
        pl.DataFrame(touches, schema=TOUCH_SCHEMA, orient="row"),
        pl.DataFrame(journeys, schema=JOURNEY_SCHEMA, orient="row"),
    )


def credit(result: pl.DataFrame, model: str) -> dict[str, tuple[float, float]]:
    rows = result.filter(pl.col("model") == model).select("channel", "conversions", "value").rows()
    return {channel: (conversions, value) for channel, conversions, value in rows}


def approx(expected: dict[str, tuple[float, float]]) -> object:
    return pytest.approx({k: pytest.approx(v, rel=1e-12, abs=1e-12) for k, v in expected.items()})


# ---------------------------------------------------------------------------------------- known answers

# google ads (2 conversions), mailing (1), google ads > mailing (1), google ads (0 conversions, 1 null)
TWO_CHANNELS: list[Row] = [
    (["google ads"], 2.0, 20.0, 0.0),
    (["mailing"], 1.0, 10.0, 0.0),
    (["google ads", "mailing"], 1.0, 10.0, 0.0),
    (["google ads"], 0.0, 0.0, 1.0),
]


def test_two_channel_markov_example() -> None:
    # start -> G 4/5, M 1/5; G -> conv 1/2, M 1/4, null 1/4; M -> conv 1.
    # P(conv) = 4/5 * 3/4 + 1/5 = 4/5. Without G: 1/5, RE = 3/4. Without M: 4/5 * 1/2 = 2/5, RE = 1/2.
    # credits: 4 * 0.75 / 1.25 = 2.4 and 4 * 0.5 / 1.25 = 1.6; value 40 shared alike.
    paths = paths_frame(TWO_CHANNELS)
    assert am.markov_removal_effects(paths) == pytest.approx({"google ads": 0.75, "mailing": 0.5}, rel=1e-12)
    expected = approx({"google ads": (2.4, 24.0), "mailing": (1.6, 16.0)})
    assert credit(am.attribute_paths(paths, ["markov"]), "markov") == expected
    assert credit(am.attribute_touches(*touch_frames(TWO_CHANNELS), ["markov"]), "markov") == expected


# J1 A > A > B (1 conversion, value 10); J2 B (2, 30); J3 A > C (1, 4); J4 C > A (0 conversions, 1 null).
MIXED: list[Row] = [
    (["A", "A", "B"], 1.0, 10.0, 0.0),
    (["B"], 2.0, 30.0, 0.0),
    (["A", "C"], 1.0, 4.0, 0.0),
    (["C", "A"], 0.0, 0.0, 1.0),
]
MIXED_EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    # J1 -> A, J2 -> B (x2), J3 -> A
    "first_touch": {"A": (2, 14), "B": (2, 30), "C": (0, 0)},
    # J1 -> B, J2 -> B (x2), J3 -> C
    "last_touch": {"A": (0, 0), "B": (3, 40), "C": (1, 4)},
    # J1: A 2/3, B 1/3; J2: B 1; J3: A 1/2, C 1/2  ->  A 2/3 + 1/2 = 7/6 (20/3 + 2), B 1/3 + 2 (10/3 + 30)
    "linear_touch": {"A": (7 / 6, 20 / 3 + 2), "B": (7 / 3, 10 / 3 + 30), "C": (0.5, 2)},
    # J1: A 1/2, B 1/2; J2: B 1; J3: A 1/2, C 1/2
    "linear_channel": {"A": (1, 7), "B": (2.5, 35), "C": (0.5, 2)},
    # J1 (3 touches): A first 0.4 + A middle 0.2, B last 0.4; J2: B 1; J3 (2 touches): 50/50
    "position_based": {"A": (1.1, 8), "B": (2.4, 34), "C": (0.5, 2)},
    # v(B)=2, v(AB)=3, v(AC)=1, v(BC)=2, v(ABC)=4, else 0 (J4 has no conversion).
    # phi_A = 1/6 (v(AB)-v(B)) + 1/6 (v(AC)-v(C)) + 1/3 (v(ABC)-v(BC)) = 1/6 + 1/6 + 2/3 = 1
    # phi_B = 1/3 * 2 + 1/6 * 3 + 1/6 * 2 + 1/3 * 3 = 2.5;  phi_C = 1/6 * 1 + 1/3 * 1 = 0.5
    "shapley": {"A": (1, 7), "B": (2.5, 35), "C": (0.5, 2)},
    # Transition weights: start -> A 2, B 2, C 1; A -> A 1, B 1, C 1, null 1; B -> conv 3; C -> conv 1, A 1.
    # x_B = 1, x_A = (x_A + 1 + x_C) / 4, x_C = (1 + x_A) / 2  ->  x_A = 3/5, x_C = 4/5,
    # P(conv) = 2/5 * 3/5 + 2/5 + 1/5 * 4/5 = 4/5.
    # Without A: x_C = 1/2, P = 2/5 + 1/10 = 1/2, RE = 3/8. Without B: x_A = 1/5, x_C = 3/5, P = 1/5, RE = 3/4.
    # Without C: x_A = 1/3, P = 2/15 + 2/5 = 8/15, RE = 1/3. Sum 35/24 -> shares 9/35, 18/35, 8/35 of 4 and 44.
    "markov": {"A": (36 / 35, 396 / 35), "B": (72 / 35, 792 / 35), "C": (32 / 35, 352 / 35)},
}


@pytest.mark.parametrize("model", sorted(MIXED_EXPECTED))
def test_mixed_journeys_known_answers(model: str) -> None:
    expected = approx({k: (float(c), float(v)) for k, (c, v) in MIXED_EXPECTED[model].items()})
    assert credit(am.attribute_paths(paths_frame(MIXED), [model]), model) == expected
    assert credit(am.attribute_touches(*touch_frames(MIXED), [model]), model) == expected


def test_markov_removal_effects_mixed() -> None:
    effects = am.markov_removal_effects(paths_frame(MIXED))
    assert effects == pytest.approx({"A": 3 / 8, "B": 3 / 4, "C": 1 / 3}, rel=1e-12)


def test_one_touch_journey_gets_everything_in_every_model() -> None:
    rows: list[Row] = [(["A"], 3.0, 9.0, 0.0)]
    result = am.attribute_touches(*touch_frames(rows))
    assert result.height == len(am.MODELS)
    assert result.select("conversions", "value").rows() == [(3.0, 9.0)] * len(am.MODELS)


def test_position_based_two_touches_split_50_50_and_custom_weights() -> None:
    rows: list[Row] = [(["A", "B"], 1.0, 10.0, 0.0), (["A", "B", "B", "C"], 1.0, 10.0, 0.0)]
    # two touches: 50/50. four touches: A 0.4, B 0.1 + 0.1, C 0.4.
    assert credit(am.attribute_paths(paths_frame(rows), ["position_based"]), "position_based") == approx(
        {"A": (0.9, 9.0), "B": (0.7, 7.0), "C": (0.4, 4.0)}
    )
    # first=0.6, last=0.2: two touches 0.75 / 0.25 (the missing middle goes pro rata); four: A 0.6, B 0.1+0.1, C 0.2
    custom = am.attribute_paths(paths_frame(rows), ["position_based"], first=0.6, last=0.2)
    assert credit(custom, "position_based") == approx({"A": (1.35, 13.5), "B": (0.45, 4.5), "C": (0.2, 2.0)})
    # first = last = 0: two touches split equally, longer journeys give everything to the middle
    zero = am.attribute_paths(paths_frame(rows), ["position_based"], first=0.0, last=0.0)
    assert credit(zero, "position_based") == approx({"A": (0.5, 5.0), "B": (1.5, 15.0), "C": (0.0, 0.0)})


def test_time_decay_known_delta_t() -> None:
    # X 7 days and Y 0 days before the conversion: weights 2^-1 = 0.5 and 1 -> 1/3 and 2/3.
    touches = pl.DataFrame([("j", T0, "X"), ("j", T0 + 7 * DAY, "Y")], schema=TOUCH_SCHEMA, orient="row")
    journeys = pl.DataFrame([("j", 1.0, 3.0, 0.0, T0 + 7 * DAY)], schema=JOURNEY_SCHEMA, orient="row")
    result = am.attribute_touches(touches, journeys, ["time_decay"])
    assert credit(result, "time_decay") == approx({"X": (1 / 3, 1.0), "Y": (2 / 3, 2.0)})


def test_time_decay_half_life_parameter_and_repeats() -> None:
    # half-life 1 day, touches 2, 1, 0 days before conversion: weights 1/4, 1/2, 1 (sum 7/4) -> 1/7, 2/7, 4/7;
    # channel A is touched twice (first and last): 1/7 + 4/7 = 5/7.
    touches = pl.DataFrame(
        [("j", T0, "A"), ("j", T0 + DAY, "B"), ("j", T0 + 2 * DAY, "A")], schema=TOUCH_SCHEMA, orient="row"
    )
    journeys = pl.DataFrame([("j", 1.0, 7.0, 0.0, T0 + 2 * DAY)], schema=JOURNEY_SCHEMA, orient="row")
    result = am.attribute_touches(touches, journeys, ["time_decay"], half_life_days=1.0)
    assert credit(result, "time_decay") == approx({"A": (5 / 7, 5.0), "B": (2 / 7, 2.0)})


def test_time_decay_extreme_half_life_and_far_conversion_stay_finite() -> None:
    # conversion 30 years after the touches: every 2^(-dt/half_life) underflows to 0 if measured from the
    # conversion, but the shares do not depend on the conversion time (a common factor): still 1/7, 2/7, 4/7.
    touches = pl.DataFrame(
        [("j", T0, "A"), ("j", T0 + DAY, "B"), ("j", T0 + 2 * DAY, "C")], schema=TOUCH_SCHEMA, orient="row"
    )
    far = pl.DataFrame([("j", 1.0, 7.0, 0.0, T0 + 30 * 365 * DAY)], schema=JOURNEY_SCHEMA, orient="row")
    result = am.attribute_touches(touches, far, ["time_decay"], half_life_days=1.0)
    assert credit(result, "time_decay") == approx({"A": (1 / 7, 1.0), "B": (2 / 7, 2.0), "C": (4 / 7, 4.0)})
    # a tiny half-life gives everything to the last touch; a huge one tends to linear_touch
    tiny = am.attribute_touches(touches, far, ["time_decay"], half_life_days=1e-9)
    assert credit(tiny, "time_decay") == approx({"A": (0.0, 0.0), "B": (0.0, 0.0), "C": (1.0, 7.0)})
    huge = am.attribute_touches(touches, far, ["time_decay"], half_life_days=1e12)
    assert credit(huge, "time_decay") == pytest.approx({k: pytest.approx((1 / 3, 7 / 3), rel=1e-9) for k in "ABC"})


def test_time_decay_nanosecond_timestamps() -> None:
    touches = pl.DataFrame([("j", T0, "X"), ("j", T0 + 7 * DAY, "Y")], schema=TOUCH_SCHEMA, orient="row").with_columns(
        pl.col("ts").cast(pl.Datetime("ns", "UTC"))
    )
    journeys = pl.DataFrame([("j", 1.0, 3.0, 0.0, T0 + 7 * DAY)], schema=JOURNEY_SCHEMA, orient="row")
    result = am.attribute_touches(touches, journeys, ["time_decay"])
    assert credit(result, "time_decay") == approx({"X": (1 / 3, 1.0), "Y": (2 / 3, 2.0)})


def test_touches_are_ordered_by_ts_and_ties_keep_row_order() -> None:
    # Rows arrive out of order; B and C share a timestamp, C's row comes first, so the order is A, C, B, D
    # ... for journey k1 ; journey k2 is a pure tie: rows Y then X -> first Y, last X.
    touches = pl.DataFrame(
        [
            ("k1", T0 + 3 * DAY, "D"),
            ("k1", T0 + DAY, "C"),
            ("k2", T0, "Y"),
            ("k1", T0, "A"),
            ("k1", T0 + DAY, "B"),
            ("k2", T0, "X"),
        ],
        schema=TOUCH_SCHEMA,
        orient="row",
    )
    journeys = pl.DataFrame(
        [("k1", 1.0, 10.0, 0.0, T0 + 3 * DAY), ("k2", 1.0, 20.0, 0.0, T0 + 3 * DAY)],
        schema=JOURNEY_SCHEMA,
        orient="row",
    )
    result = am.attribute_touches(touches, journeys, ["first_touch", "last_touch", "position_based"])
    assert credit(result, "first_touch") == approx(
        {"A": (1, 10), "B": (0, 0), "C": (0, 0), "D": (0, 0), "X": (0, 0), "Y": (1, 20)}
    )
    assert credit(result, "last_touch") == approx(
        {"A": (0, 0), "B": (0, 0), "C": (0, 0), "D": (1, 10), "X": (1, 20), "Y": (0, 0)}
    )
    # k1: A 0.4, C 0.1, B 0.1, D 0.4; k2: 50/50
    assert credit(result, "position_based") == approx(
        {"A": (0.4, 4), "B": (0.1, 1), "C": (0.1, 1), "D": (0.4, 4), "X": (0.5, 10), "Y": (0.5, 10)}
    )
    paths = am.aggregate_paths(touches, journeys)
    assert paths.get_column("path").to_list() == [["A", "C", "B", "D"], ["Y", "X"]]


def test_empty_input_gives_empty_frame_with_schema() -> None:
    touches, journeys = touch_frames([])
    for result in (
        am.attribute_touches(touches, journeys),
        am.attribute_touches(touches.lazy(), journeys.lazy()),
        am.attribute_paths(paths_frame([])),
    ):
        assert result.is_empty()
        assert result.schema == am.OUTPUT_SCHEMA
    assert am.aggregate_paths(touches, journeys).schema == am.PATHS_SCHEMA
    assert am.markov_removal_effects(paths_frame([])) == {}
    assert am.shapley_values(paths_frame([])).schema == am.SHAPLEY_SCHEMA


def test_month_without_conversions_gives_zero_credit_rows() -> None:
    rows: list[Row] = [(["A", "B"], 0.0, 0.0, 1.0), (["B"], 0.0, 0.0, 2.0)]
    for result in (
        am.attribute_touches(*touch_frames(rows)),
        am.attribute_touches(*touch_frames(rows), am.HEURISTIC_MODELS),  # no journey takes part at all
        am.attribute_paths(paths_frame(rows)),
    ):
        assert set(result.get_column("channel")) == {"A", "B"}
        assert result.select(pl.col("conversions", "value").abs().max()).row(0) == (0.0, 0.0)
    assert am.markov_removal_effects(paths_frame(rows)) == {"A": 0.0, "B": 0.0}


def test_non_converting_journeys_change_markov_only() -> None:
    base: list[Row] = [(["A", "B"], 1.0, 5.0, 0.0), (["B"], 1.0, 5.0, 0.0)]
    extra = [*base, (["B", "C"], 0.0, 0.0, 3.0)]
    before, after = am.attribute_paths(paths_frame(base)), am.attribute_paths(paths_frame(extra))
    for model in am.PATH_MODELS:
        old, new = credit(before, model), credit(after, model)
        if model == "markov":
            assert new["B"][0] != pytest.approx(old["B"][0])
        else:
            assert new == approx({**old, "C": (0.0, 0.0)})


def test_aggregate_paths_collapses_identical_paths() -> None:
    rows: list[Row] = [
        (["B", "A"], 1.0, 5.0, 0.0),
        (["A"], 0.0, 0.0, 1.0),
        (["B", "A"], 2.0, 7.0, 1.0),
        (["A"], 1.0, 2.0, 0.0),
    ]
    paths = am.aggregate_paths(*touch_frames(rows))
    assert paths.schema == am.PATHS_SCHEMA
    assert paths.rows() == [(["A"], 1.0, 2.0, 1.0), (["B", "A"], 3.0, 12.0, 1.0)]


def test_integer_journey_ids_and_lazy_frames() -> None:
    touches, journeys = touch_frames(MIXED)
    as_int = pl.col("journey_id").str.slice(1).cast(pl.Int32)
    result = am.attribute_touches(
        touches.lazy().with_columns(as_int), journeys.lazy().with_columns(as_int.cast(pl.Int64))
    )
    assert result.equals(am.attribute_touches(touches, journeys))


def test_parse_path_string() -> None:
    assert am.parse_path_string("google ads > mailing") == ["google ads", "mailing"]
    assert am.parse_path_string("  direct ") == ["direct"]
    for bad in ("", "   ", "a > > b", "a >", "> a"):
        with pytest.raises(ValueError, match="invalid path"):
            am.parse_path_string(bad)


def test_paths_given_as_export_strings() -> None:
    lists = paths_frame(TWO_CHANNELS)
    strings = lists.with_columns(pl.col("path").list.join("  >  "))
    assert am.attribute_paths(strings).equals(am.attribute_paths(lists))
    with pytest.raises(ValueError, match="empty channel name"):
        am.attribute_paths(strings.with_columns(path=pl.lit("a > > b")))


def test_output_is_one_row_per_model_and_channel_in_order() -> None:
    result = am.attribute_paths(paths_frame(MIXED), ["markov", "first_touch", "markov"])
    assert result.schema == am.OUTPUT_SCHEMA
    assert result.select("model", "channel").rows() == [
        (m, c) for m in ("markov", "first_touch") for c in ("A", "B", "C")
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": ["last_click"]}, "unknown attribution model"),
        ({"models": []}, "no attribution model"),
        ({"half_life_days": 0.0}, "half_life_days"),
        ({"half_life_days": -1.0}, "half_life_days"),
        ({"half_life_days": math.nan}, "half_life_days"),
        ({"first": 0.7, "last": 0.4}, "at most 1"),
        ({"first": -0.1}, "between 0 and 1"),
        ({"last": math.inf}, "between 0 and 1"),
    ],
)
def test_invalid_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        am.attribute_touches(*touch_frames(MIXED), **kwargs)  # type: ignore[arg-type]


def test_invalid_inputs() -> None:
    touches, journeys = touch_frames(MIXED)
    with pytest.raises(ValueError, match="use attribute_touches"):
        am.attribute_paths(paths_frame(MIXED), ["time_decay"])
    with pytest.raises(ValueError, match="no touches"):
        am.attribute_touches(touches.filter(pl.col("journey_id") != "j1"), journeys)
    with pytest.raises(ValueError, match="unique"):
        am.attribute_touches(touches, pl.concat([journeys, journeys.head(1)]))
    with pytest.raises(ValueError, match="must not be negative"):
        am.attribute_touches(touches, journeys.with_columns(conversions=pl.lit(-1.0)))
    with pytest.raises(ValueError, match="finite"):
        am.attribute_touches(touches, journeys.with_columns(value=pl.lit(math.nan)))
    with pytest.raises(ValueError, match="null"):
        am.attribute_touches(touches.with_columns(channel=pl.lit(None, pl.String)), journeys)
    with pytest.raises(ValueError, match="empty channel name"):
        am.attribute_touches(touches.with_columns(channel=pl.lit("")), journeys)
    with pytest.raises(ValueError, match="types differ"):
        am.attribute_touches(touches.with_columns(pl.col("journey_id").str.len_bytes()), journeys)
    with pytest.raises(ValueError, match="at least one channel"):
        am.attribute_paths(paths_frame([([], 1.0, 1.0, 0.0)]))
    with pytest.raises(ValueError, match="Shapley method"):
        am.shapley_values(paths_frame(MIXED), method="sample")  # type: ignore[arg-type]


def test_touches_of_unknown_journeys_are_inert() -> None:
    touches, journeys = touch_frames(MIXED)
    stray = pl.DataFrame([("nobody", T0, "A")], schema=TOUCH_SCHEMA, orient="row")
    assert am.attribute_touches(pl.concat([touches, stray]), journeys).equals(am.attribute_touches(touches, journeys))


def test_markov_zero_effect_sum_falls_back_to_linear_channel() -> None:
    segments = am._segments_from_paths(paths_frame(MIXED))
    with pytest.warns(RuntimeWarning, match="linear_channel"):
        fallback = am._markov_credit(np.zeros(segments.n_channels), segments)
    np.testing.assert_allclose(fallback, am._linear_channel(segments))


def test_shapley_enumeration_of_many_channels_matches_closed_form() -> None:
    # 15 players: the largest enumeration (2^15 coalitions); 16: auto switches to the closed form.
    names = [f"c{i:02d}" for i in range(16)]
    rows: list[Row] = [(names[i : i + 4], float(i % 3), float(i + 1), 1.0) for i in range(13)]
    fifteen, sixteen = paths_frame(rows[:12]), paths_frame(rows)
    enumerated = am.shapley_values(fifteen, "enumerate")
    closed = am.shapley_values(fifteen, "closed_form")
    assert enumerated.height == 15
    for column in ("conversions", "value"):
        np.testing.assert_allclose(enumerated.get_column(column), closed.get_column(column), rtol=1e-9, atol=1e-9)
    assert am.shapley_values(fifteen).equals(enumerated)
    assert am.shapley_values(sixteen).equals(am.shapley_values(sixteen, "closed_form"))


# ------------------------------------------------------------------------------------------- properties

ALPHABET = "ABCDEFGHIJ"


@st.composite
def journey_rows(draw: st.DrawFn, n_channels: int = 5, max_rows: int = 8) -> list[Row]:
    channels = st.sampled_from(ALPHABET[:n_channels])
    row = st.tuples(
        st.lists(channels, min_size=1, max_size=6),
        st.integers(0, 3).map(float),
        st.integers(0, 500).map(lambda v: v / 4),
        st.integers(0, 2).map(float),
    )
    return draw(st.lists(row, min_size=1, max_size=max_rows))


def reference_removal_effects(rows: list[Row]) -> dict[str, float]:
    """Textbook definition: rebuild the chain with the channel removed and solve it again."""
    channels = sorted({c for p, *_ in rows for c in p})
    states = ["start", *channels, "conv", "null"]
    index = {s: i for i, s in enumerate(states)}
    counts = np.zeros((len(states), len(states)))
    for path, conversions, _, nulls in rows:
        weight = conversions + nulls
        for a, b in zip(["start", *path], path, strict=False):
            counts[index[a], index[b]] += weight
        counts[index[path[-1]], index["conv"]] += conversions
        counts[index[path[-1]], index["null"]] += nulls

    def p_conv(removed: str | None) -> float:
        m = counts.copy()
        if m[0].sum() == 0:
            return 0.0
        if removed is not None:
            m[:, index["null"]] += m[:, index[removed]]
            m[:, index[removed]] = 0.0
        transient = [i for i in range(len(states) - 2) if m[i].sum() > 0 and states[i] != removed]
        p = m[transient] / m[transient].sum(axis=1, keepdims=True)
        q, r = p[:, transient], p[:, index["conv"]]
        return float(np.linalg.solve(np.eye(len(transient)) - q, r)[0])

    base = p_conv(None)
    return {c: (1 - p_conv(c) / base if base > 0 else 0.0) for c in channels}


def totals(rows: list[Row]) -> tuple[float, float]:
    return sum(r[1] for r in rows), sum(r[2] for r in rows)


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(journey_rows())
def test_efficiency_every_model(rows: list[Row]) -> None:
    conversions, value = totals(rows)
    result = am.attribute_touches(*touch_frames(rows, step=dt.timedelta(days=1)))
    sums = dict(
        result.group_by("model")
        .agg(pl.col("conversions").sum(), pl.col("value").sum())
        .select("model", pl.concat_list("conversions", "value"))
        .rows()
    )
    for model in am.MODELS:
        if conversions > 0 or model not in ("markov",):
            assert sums[model] == pytest.approx([conversions, value], rel=1e-9, abs=1e-9), model


@FAST
@given(journey_rows(), st.sampled_from([("A", "B"), ("A", "C"), ("B", "E")]))
def test_symmetry_swapping_names_swaps_credit(rows: list[Row], pair: tuple[str, str]) -> None:
    a, b = pair
    swap = {a: b, b: a}
    swapped = [([swap.get(c, c) for c in p], conv, val, n) for p, conv, val, n in rows]
    original = am.attribute_touches(*touch_frames(rows, step=dt.timedelta(hours=7)))
    mirrored = am.attribute_touches(*touch_frames(swapped, step=dt.timedelta(hours=7)))
    for model in am.MODELS:
        left, right = credit(original, model), credit(mirrored, model)
        assert {swap.get(c, c): v for c, v in right.items()} == pytest.approx(
            {c: pytest.approx(v, rel=1e-9, abs=1e-9) for c, v in left.items()}
        ), model


@FAST
@given(journey_rows())
def test_null_player(rows: list[Row]) -> None:
    # a channel that never appears has no row; one seen only in weightless journeys gets 0 everywhere
    inert = [*rows, (["Z", "Z"], 0.0, 0.0, 0.0)]
    result = am.attribute_touches(*touch_frames(inert))
    assert "Y" not in set(result.get_column("channel"))
    assert result.filter(pl.col("channel") == "Z").select(pl.col("conversions", "value").abs().max()).row(0) == (
        0.0,
        0.0,
    )
    without = am.attribute_paths(paths_frame(rows))
    assert credit(am.attribute_paths(paths_frame(inert)), "markov") == approx(
        {**credit(without, "markov"), "Z": (0.0, 0.0)}
    )


@FAST
@given(journey_rows(n_channels=10, max_rows=12))
def test_shapley_efficiency_and_enumeration_equals_closed_form(rows: list[Row]) -> None:
    paths = paths_frame(rows)
    enumerated = am.shapley_values(paths, "enumerate")
    closed = am.shapley_values(paths, "closed_form")
    assert enumerated.get_column("channel").equals(closed.get_column("channel"))
    for column in ("conversions", "value"):
        np.testing.assert_allclose(enumerated.get_column(column), closed.get_column(column), rtol=1e-9, atol=1e-9)
    conversions, value = totals(rows)
    assert enumerated.select(pl.col("conversions", "value").sum()).row(0) == pytest.approx(
        (conversions, value), rel=1e-9, abs=1e-9
    )


@FAST
@given(journey_rows(), st.integers(0, 2**32 - 1))
def test_touch_level_equals_path_level(rows: list[Row], seed: int) -> None:
    touches, journeys = touch_frames(rows)
    shuffled = touches.sample(fraction=1.0, shuffle=True, seed=seed)  # order comes from ts, not from rows
    from_touches = am.attribute_touches(shuffled, journeys, am.PATH_MODELS)
    from_paths = am.attribute_paths(paths_frame(rows))
    from_aggregated = am.attribute_paths(am.aggregate_paths(shuffled, journeys))
    for other in (from_paths, from_aggregated):
        assert other.select("model", "channel").equals(from_touches.select("model", "channel"))
        for column in ("conversions", "value"):
            np.testing.assert_allclose(other.get_column(column), from_touches.get_column(column), rtol=1e-9, atol=1e-9)


@FAST
@given(journey_rows(n_channels=6))
def test_markov_matches_removal_by_resolving_the_chain(rows: list[Row]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        effects = am.markov_removal_effects(paths_frame(rows))
    assert effects == pytest.approx(reference_removal_effects(rows), rel=1e-9, abs=1e-12)
