"""Journeys: hand-built touch histories with known journeys."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from assets.marketing.journeys import NO_TOUCH, build_journeys

JAN = dt.date(2024, 1, 1)


def ts(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=dt.UTC)


def touch(identifier: str, when: dt.datetime, channel: str | None, value: float | None = None) -> dict[str, object]:
    conversion = channel is None
    return {
        "event_key": f"{identifier}@{when.isoformat()}@{channel}",
        "person_id": identifier,
        "ts": when,
        "channel": channel,
        "source": "crm" if conversion else "web",
        "campaign": None,
        "cost": 0.5 if channel == "paid_search" else 0.0,
        "is_conversion": conversion,
        "conversion_value": value,
        "identifier": identifier,
        "landing_date": when.date(),
    }


def frames(rows: list[dict[str, object]], identity: list[tuple[str, str]] = ()) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    schema = {
        "event_key": pl.String,
        "person_id": pl.String,
        "ts": pl.Datetime("us", "UTC"),
        "channel": pl.String,
        "source": pl.String,
        "campaign": pl.String,
        "cost": pl.Float64,
        "is_conversion": pl.Boolean,
        "conversion_value": pl.Float64,
        "identifier": pl.String,
        "landing_date": pl.Date,
    }
    ident = pl.DataFrame(
        {"identifier": [i for i, _ in identity], "person_id": [p for _, p in identity], "month": [JAN] * len(identity)},
        schema={"identifier": pl.String, "person_id": pl.String, "month": pl.Date},
    )
    return pl.DataFrame(rows, schema=schema).lazy(), ident.lazy()


def paths(journeys: pl.DataFrame) -> dict[str, tuple[list[str], float, float, float]]:
    out = {}
    for (jid,), group in journeys.sort("touch_index").group_by("journey_id", maintain_order=True):
        out[str(jid)] = (
            group["channel"].to_list(),
            group["conversions"][0],
            group["value"][0],
            group["nulls"][0],
        )
    return out


def test_a_conversion_closes_its_journey_and_the_next_starts_fresh() -> None:
    rows = [
        touch("customer:P", ts("2024-01-05"), "paid_search"),
        touch("customer:P", ts("2024-01-10"), "email"),
        touch("customer:P", ts("2024-01-12"), None, 100.0),
        touch("customer:P", ts("2024-01-20"), "social"),
        touch("customer:P", ts("2024-01-21"), None, 50.0),
        touch("customer:P", ts("2024-01-25"), "display"),
    ]
    result = build_journeys(*frames(rows), JAN, lookback_days=30)
    got = sorted(paths(result).values(), key=lambda p: p[0])
    assert got == [
        (["display"], 0.0, 0.0, 1.0),  # no conversion by month end: a null journey
        (["paid_search", "email"], 1.0, 100.0, 0.0),
        (["social"], 1.0, 50.0, 0.0),
    ]
    assert result["month"].unique().to_list() == [JAN]


def test_lookback_reaches_into_the_previous_month_but_not_further() -> None:
    rows = [
        touch("customer:P", ts("2023-12-01"), "video"),  # 33 days before: outside 30-day lookback
        touch("customer:P", ts("2023-12-10"), "referral"),  # 24 days before: inside
        touch("customer:P", ts("2024-01-03"), None, 20.0),
    ]
    result = build_journeys(*frames(rows), JAN, lookback_days=30)
    assert list(paths(result).values()) == [(["referral"], 1.0, 20.0, 0.0)]
    wider = build_journeys(*frames(rows), JAN, lookback_days=40)
    assert list(paths(wider).values()) == [(["video", "referral"], 1.0, 20.0, 0.0)]


def test_identity_of_the_month_joins_anonymous_touches_to_the_customer() -> None:
    rows = [
        touch("cookie:x", ts("2024-01-02"), "social"),  # before login: keyed by cookie
        touch("customer:Q", ts("2024-01-04"), "direct"),
        touch("customer:Q", ts("2024-01-04", 13), None, 75.0),
    ]
    result = build_journeys(*frames(rows, identity=[("cookie:x", "customer:Q")]), JAN, lookback_days=30)
    assert list(paths(result).values()) == [(["social", "direct"], 1.0, 75.0, 0.0)]
    assert result["person_id"].unique().to_list() == ["customer:Q"]


def test_conversion_without_touches_is_credited_to_none_and_same_instant_touch_counts() -> None:
    rows = [
        touch("customer:R", ts("2024-01-08"), None, 10.0),
        touch("customer:S", ts("2024-01-09"), "email"),
        touch("customer:S", ts("2024-01-09"), None, 30.0),  # same instant as the touch
    ]
    result = build_journeys(*frames(rows), JAN, lookback_days=30)
    got = sorted(paths(result).values())
    assert got == [([NO_TOUCH], 1.0, 10.0, 0.0), (["email"], 1.0, 30.0, 0.0)]


def test_null_journeys_belong_to_the_month_of_their_last_touch() -> None:
    rows = [
        touch("customer:T", ts("2023-12-20"), "display"),  # December's null journey, not January's
        touch("customer:U", ts("2023-12-28"), "video"),
        touch("customer:U", ts("2024-01-02"), "video"),  # continues into January: January's
    ]
    result = build_journeys(*frames(rows), JAN, lookback_days=30)
    assert list(paths(result).values()) == [(["video", "video"], 0.0, 0.0, 1.0)]


def test_conversions_after_the_month_are_ignored_and_empty_months_are_empty() -> None:
    rows = [touch("customer:V", ts("2024-02-02"), None, 5.0), touch("customer:V", ts("2024-02-01"), "email")]
    result = build_journeys(*frames(rows), JAN, lookback_days=30)
    assert result.height == 0
    assert "journey_id" in result.columns


def test_lookback_is_validated() -> None:
    with pytest.raises(ValueError, match="lookback_days must be between 1 and"):
        build_journeys(*frames([]), JAN, lookback_days=0)
