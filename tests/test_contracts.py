"""Contracts: rules, validation splits and the UI schema, against hand-made frames."""

from __future__ import annotations

import dataframely as dy
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.contracts import RULES_COLUMN, Contract, check_name_for_rule


class Order(dy.Schema):
    order_id = dy.String(primary_key=True)
    amount = dy.Float64(nullable=False, min=0)
    status = dy.Enum(["open", "paid"], nullable=False)

    @dy.rule()
    def small_enough(cls) -> pl.Expr:
        return pl.col("amount") < 1000


CONTRACT = Contract(schema=Order, version="1.2.0", owner="team:test", description="orders")


def test_rules_list_every_rule_dataframely_can_report() -> None:
    assert CONTRACT.rules == [
        "small_enough",
        "primary_key",
        "order_id|nullability",
        "amount|nullability",
        "amount|min",
        "amount|inf",
        "amount|nan",
        "status|nullability",
        "status|dtype",
    ]
    assert check_name_for_rule("amount|min") == "rule_amount_min"


def test_validate_splits_rows_and_names_the_broken_rules() -> None:
    frame = pl.DataFrame(
        {
            "order_id": ["a", "b", "b", "c", "d", "e"],
            "amount": [1.0, 2.0, 3.0, -5.0, 5000.0, 7.0],
            "status": ["open", "paid", "paid", "open", "open", "lost"],
            "_source_file": ["f1", "f1", "f2", "f2", "f3", "f3"],
        }
    )
    result = CONTRACT.validate(frame)
    assert result.accepted["order_id"].to_list() == ["a"]
    assert result.accepted["_source_file"].to_list() == ["f1"]  # provenance carried along
    rejected = {row["order_id"] + "@" + row["_source_file"]: row[RULES_COLUMN] for row in result.rejected.to_dicts()}
    assert rejected == {
        "b@f1": "primary_key",
        "b@f2": "primary_key",
        "c@f2": "amount|min",
        "d@f3": "small_enough",
        "e@f3": "status|dtype",
    }
    assert result.counts == {"primary_key": 2, "amount|min": 1, "small_enough": 1, "status|dtype": 1}
    assert result.rows_in == frame.height


def test_validate_without_extra_columns_and_empty_frames() -> None:
    empty = pl.DataFrame(schema={"order_id": pl.String, "amount": pl.Float64, "status": pl.String})
    result = CONTRACT.validate(empty)
    assert result.accepted.height == 0 and result.rejected.height == 0 and result.counts == {}
    assert result.accepted.schema["status"] == pl.Enum(["open", "paid"])


def test_missing_column_is_a_module_bug_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) status"):
        CONTRACT.validate(pl.DataFrame({"order_id": ["a"], "amount": [1.0]}))


def test_contract_metadata_is_validated() -> None:
    with pytest.raises(ValueError, match="not semantic"):
        Contract(schema=Order, version="v1", owner="x", description="y")
    with pytest.raises(ValueError, match="warn_rate"):
        Contract(schema=Order, version="1.0.0", owner="x", description="y", warn_rate=0.5, error_rate=0.1)


def test_table_schema_carries_types_nullability_and_keys() -> None:
    schema = CONTRACT.table_schema()
    by_name = {c.name: c for c in schema.columns}
    assert list(by_name) == ["order_id", "amount", "status"]
    assert by_name["order_id"].constraints.unique is True
    assert by_name["order_id"].constraints.nullable is False
    assert by_name["amount"].type == "Float64"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", None]),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.sampled_from(["open", "paid", "lost", None]),
        ),
        max_size=30,
    )
)
def test_rows_in_equals_accepted_plus_rejected(rows: list[tuple[str | None, float | None, str | None]]) -> None:
    frame = pl.DataFrame(
        {"order_id": [r[0] for r in rows], "amount": [r[1] for r in rows], "status": [r[2] for r in rows]},
        schema={"order_id": pl.String, "amount": pl.Float64, "status": pl.String},
    )
    result = CONTRACT.validate(frame)
    assert result.accepted.height + result.rejected.height == frame.height
    assert result.rejected[RULES_COLUMN].null_count() == 0
    assert Order.is_valid(result.accepted.select(Order.column_names()))
