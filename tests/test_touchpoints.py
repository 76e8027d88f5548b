"""Touchpoints: cross-source dedup and channel mapping on a hand-built day."""

from __future__ import annotations

import datetime as dt

import polars as pl

from assets.marketing import ads, crm, email, social, web
from assets.marketing.touchpoints import unify_touchpoints, web_channel

DAY = dt.date(2024, 3, 5)
BEFORE = DAY - dt.timedelta(days=1)


def at(hour: int, minute: int = 0, second: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=dt.UTC)


def frame(module, rows: list[dict[str, object]]) -> pl.LazyFrame:  # type: ignore[no-untyped-def]
    schema = {**module.CONTRACT.polars_schema, "landing_date": pl.Date()}
    filled = [{name: row.get(name) for name in schema} for row in rows]
    return pl.DataFrame(filled, schema=schema).lazy()


def test_sessions_opened_by_clicks_are_merged_and_the_rest_are_touches() -> None:
    ad = frame(
        ads,
        [
            {
                "click_id": "c1",
                "cookie_id": "k1",
                "campaign": "brand",
                "channel": "paid_search",
                "cost": 1.2,
                "ts": at(9),
                "landing_date": DAY,
            },
            {
                "click_id": "c0",
                "cookie_id": "k9",
                "campaign": "brand",
                "channel": "display",
                "cost": 0.3,
                "ts": at(23, 59, 50, BEFORE),
                "landing_date": BEFORE,
            },
        ],
    )
    soc = frame(
        social,
        [
            {
                "event_id": "s1",
                "cookie_id": "k2",
                "platform": "facebook",
                "campaign": "spring",
                "event_type": "click",
                "ts": at(10),
                "landing_date": DAY,
            },
            {
                "event_id": "s2",
                "social_handle": "h",
                "platform": "x",
                "campaign": "spring",
                "event_type": "impression",
                "ts": at(10),
                "landing_date": DAY,
            },
        ],
    )
    mail = frame(
        email,
        [
            {
                "message_id": "m1",
                "email_hash": "e" * 64,
                "campaign": "news",
                "event_type": "send",
                "ts": at(7),
                "landing_date": DAY,
            },
            {
                "message_id": "m1",
                "email_hash": "e" * 64,
                "campaign": "news",
                "event_type": "click",
                "ts": at(8),
                "landing_date": DAY,
            },
        ],
    )
    sessions = frame(
        web,
        [
            # opened by ad click c1 (same click id)
            {
                "session_id": "w1",
                "cookie_id": "k1",
                "click_id": "c1",
                "utm_source": "google",
                "utm_medium": "cpc",
                "ts": at(9, 0, 5),
                "goal_completions": 0,
                "landing_date": DAY,
            },
            # opened by yesterday's ad click c0 just after midnight
            {
                "session_id": "w0",
                "cookie_id": "k9",
                "click_id": "c0",
                "utm_source": "google",
                "utm_medium": "display",
                "ts": at(0, 0, 3),
                "goal_completions": 0,
                "landing_date": DAY,
            },
            # opened by social click s1: same cookie, social medium, seconds later
            {
                "session_id": "w2",
                "cookie_id": "k2",
                "utm_source": "facebook",
                "utm_medium": "social",
                "utm_campaign": "spring",
                "ts": at(10, 0, 4),
                "goal_completions": 0,
                "landing_date": DAY,
            },
            # opened by the e-mail click: the cookie is not linked to the e-mail yet, matched by campaign
            {
                "session_id": "w3",
                "cookie_id": "k3",
                "utm_source": "newsletter",
                "utm_medium": "email",
                "utm_campaign": "news",
                "ts": at(8, 0, 6),
                "goal_completions": 0,
                "landing_date": DAY,
            },
            # independent visits
            {
                "session_id": "w4",
                "cookie_id": "k4",
                "utm_source": "google",
                "utm_medium": "organic",
                "ts": at(11),
                "goal_completions": 1,
                "landing_date": DAY,
            },
            {
                "session_id": "w5",
                "cookie_id": "k5",
                "customer_id": "C5",
                "ts": at(12),
                "goal_completions": 0,
                "landing_date": DAY,
            },
        ],
    )
    orders = frame(
        crm,
        [
            {
                "record_type": "order",
                "customer_id": "C5",
                "order_id": "o1",
                "amount": 100.0,
                "currency": "EUR",
                "ts": at(12, 5),
                "landing_date": DAY,
            },
            {
                "record_type": "customer",
                "customer_id": "C6",
                "email_hash": "f" * 64,
                "signup_ts": at(6),
                "ts": at(6),
                "landing_date": DAY,
            },
        ],
    )
    identity = pl.LazyFrame({"identifier": ["cookie:k5"], "person_id": ["customer:C5"], "month": [dt.date(2024, 3, 1)]})
    result, stats = unify_touchpoints(ad, soc, sessions, mail, orders, identity, [DAY])
    rows = {r["event_key"]: r for r in result.to_dicts()}
    assert set(rows) == {"ads:c1", "social:s1", "email:m1:click", "web:w4", "web:w5", "crm:o1"}
    assert rows["ads:c1"]["source"] == "ads+web"
    assert rows["social:s1"]["source"] == "social+web"
    assert rows["email:m1:click"]["source"] == "email+web"
    assert rows["web:w4"]["channel"] == "organic_search"
    assert rows["web:w5"]["channel"] == "direct" and rows["web:w5"]["person_id"] == "customer:C5"
    assert rows["crm:o1"]["is_conversion"] and rows["crm:o1"]["conversion_value"] == 108.0  # EUR → USD
    assert rows["crm:o1"]["person_id"] == "customer:C5"
    assert stats["sessions_merged_into_ad_clicks"] == 2  # w1 and w0 (yesterday's click)
    assert stats["sessions_merged_into_social_or_email_clicks"] == 2
    assert result["landing_date"].unique().to_list() == [DAY]  # yesterday's click is not re-emitted


def test_web_channel_mapping() -> None:
    frame = pl.DataFrame(
        {
            "utm_source": ["google", "google", None, "x", "newsletter", "site.com", "weird", "youtube"],
            "utm_medium": ["cpc", "organic", None, "social", "email", "referral", "affiliate", "video"],
        }
    )
    assert frame.select(web_channel()).to_series().to_list() == [
        "paid_search",
        "organic_search",
        "direct",
        "social",
        "email",
        "referral",
        "other",
        "video",
    ]
