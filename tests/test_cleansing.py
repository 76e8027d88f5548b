"""Standard cleansing: parse → cleansing → contract, with every reject accounted for."""

from __future__ import annotations

import datetime as dt

import dataframely as dy
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.cleansing import (
    PARTITION_DATE,
    REASON,
    REJECT,
    RULE,
    STAGE,
    CleansingBugError,
    quarantine_schema,
    run_cleansing,
)
from intelligence.contracts import Contract
from resources.landing_zone import parse_csv

COLUMNS = {"id": "str", "kind": "str", "cost": "float", "ts": "datetime"}


class Thing(dy.Schema):
    id = dy.String(primary_key=True)
    kind = dy.Enum(["a", "b"], nullable=False)
    cost = dy.Float64(nullable=False, min=0)
    ts = dy.Datetime(nullable=False, time_zone="UTC")


CONTRACT = Contract(schema=Thing, version="1.0.0", owner="team:test", description="things")


def cleanse(frame: pl.DataFrame) -> pl.DataFrame:
    """Lower-case kinds; flag ids starting with 'x' as test traffic."""
    return frame.with_columns(
        pl.col("kind").str.to_lowercase(),
        pl.when(pl.col("id").str.starts_with("x")).then(pl.lit("test_traffic")).alias(REJECT),
    )


def parsed(text: str, day: dt.date = dt.date(2024, 1, 5)) -> pl.DataFrame:
    frame = parse_csv(text.encode(), COLUMNS, "things/2024-01-05/f.csv")
    return frame.with_columns(pl.lit(day).alias(PARTITION_DATE))


def test_each_reject_leaves_at_its_stage_with_a_reason() -> None:
    text = (
        "id,kind,cost,ts\n"
        "1,A,1.0,2024-01-05T10:00:00Z\n"  # ok after lower-casing
        "2,b,oops,2024-01-05T10:00:00Z\n"  # parse: cost not a number
        "3,b\n"  # parse: ragged
        "4,b,2.0,2024-01-05T10:00:00Z\n"  # ok
        "4,b,2.0,2024-01-05T10:00:00Z\n"  # cleansing: exact duplicate
        "x5,a,1.0,2024-01-05T10:00:00Z\n"  # cleansing: module rule
        "6,c,1.0,2024-01-05T10:00:00Z\n"  # contract: kind not in enum
        "7,a,-1.0,2024-01-05T10:00:00Z\n"  # contract: negative cost
    )
    result = run_cleansing(parsed(text), list(COLUMNS), CONTRACT, cleanse)
    assert result.rows_in == 8
    assert result.accepted["id"].to_list() == ["1", "4"]
    assert result.accepted["kind"].to_list() == ["a", "b"]
    q = {row["_line"]: (row[STAGE], row[RULE]) for row in result.quarantine.to_dicts()}
    assert q == {
        3: ("parse", "parse"),
        4: ("parse", "parse"),
        6: ("cleansing", "duplicate_row"),
        7: ("cleansing", "test_traffic"),
        8: ("contract", "kind|dtype"),
        9: ("contract", "cost|min"),
    }
    reasons = dict(zip(result.quarantine["_line"], result.quarantine[REASON], strict=True))
    assert "cost: not a number (oops)" in reasons[3]
    assert "ragged row: expected 4 fields, found 2" in reasons[4]
    assert reasons[9] == "contract Thing 1.0.0 broken: cost|min"
    assert result.stage_counts == {"parse": 2, "cleansing": 2, "contract": 2}
    assert result.cleansing_counts == {"duplicate_row": 1, "test_traffic": 1}
    assert result.rule_counts == {"kind|dtype": 1, "cost|min": 1}
    assert result.quarantine.schema == quarantine_schema(list(COLUMNS))
    assert set(result.quarantine[PARTITION_DATE].to_list()) == {dt.date(2024, 1, 5)}


def test_a_cleanser_that_drops_rows_is_reported_as_a_bug() -> None:
    def lossy(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.head(1)

    text = "id,kind,cost,ts\n1,a,1,2024-01-05T10:00:00Z\n2,a,1,2024-01-05T10:00:00Z\n"
    with pytest.raises(CleansingBugError, match="never drop or add rows"):
        run_cleansing(parsed(text), list(COLUMNS), CONTRACT, lossy)


def test_empty_input_gives_empty_outputs_with_schemas() -> None:
    result = run_cleansing(parsed(""), list(COLUMNS), CONTRACT, cleanse)
    assert result.rows_in == 0 and result.accepted.height == 0 and result.quarantine.height == 0
    assert result.accepted.columns[:4] == ["id", "kind", "cost", "ts"]


line = st.one_of(
    st.builds(
        lambda i, k, c, t: f"{i},{k},{c},{t}",
        st.sampled_from(["1", "2", "3", "x4", ""]),
        st.sampled_from(["a", "B", "c", ""]),
        st.sampled_from(["1.5", "-2", "abc", "", "1e400"]),
        st.sampled_from(["2024-01-05T10:00:00Z", "1704449000", "nope", ""]),
    ),
    st.text(alphabet='ab,"\n 1', max_size=12),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(line, max_size=25))
def test_rows_in_equals_accepted_plus_quarantined(lines: list[str]) -> None:
    text = "id,kind,cost,ts\n" + "\n".join(lines) + "\n"
    frame = parsed(text)
    result = run_cleansing(frame, list(COLUMNS), CONTRACT, cleanse)
    assert result.rows_in == frame.height == result.accepted.height + result.quarantine.height
    assert result.quarantine[REASON].null_count() == 0
    assert result.quarantine[RULE].null_count() == 0
    assert Thing.is_valid(result.accepted.select(Thing.column_names()))
