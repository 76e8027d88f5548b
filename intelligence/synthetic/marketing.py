"""Seeded synthetic marketing world: five landing sources plus the ground truth behind them.

`generate_marketing(config, landing_root, truth_root)` simulates people, their journeys across channels and their
orders, then lands what five systems (ads, social, crm, web, email) would have exported about them, with realistic
defects, and writes the ground truth that tests and benchmarks judge the platform by. It is vectorised numpy/polars,
works day by day (bounded memory, one progress line per day) and is deterministic: the same config gives
byte-identical landing files. CLI: `python -m intelligence.synthetic.marketing --home DIR --start 2024-01-01
--days 30 --people 5000 --seed 7 [--flaky-days 10-14] [--progress]` writes DIR/landing and DIR/truth.

Landing layout (relative to `landing_root`; files are only ever created, never rewritten)
----------------------------------------------------------------------------------------
`<source>/<YYYY-MM-DD>/<source>_<YYYY-MM-DD>_<NN>.<ext>`, NN = 01, 02, ... (`BATCHES_PER_DAY`: social has four
six-hour batches, web two twelve-hour batches, the others one). Every regular batch file exists for every day of the
window, even when empty (header-only CSV, empty JSONL). A late file `<source>_<YYYY-MM-DD>_late01.<ext>` sits in the
same folder and holds rows of that day held back from its regular files; it arrives 1-4 days later (`arrives_at` in
files.parquet). The folder date is the UTC date of the record's ts, except the initial CRM export: customers who
signed up before the window are customer rows in day 0's crm file, with their old signup time as ts. A web session
opened at 23:59:58 by an ad click lands in the next day's web folder. Files are written atomically (hidden temp file,
then a hard link that fails rather than overwrite).

CSV (ads, crm, web, email): UTF-8, `\\n` line ends, a header row, comma separated, RFC 4180 quoting only where needed
(the campaign `spring_sale, eu` is always quoted); an empty field is a missing value. JSONL (social): one object per
line, no header, keys in `COLUMNS` order, every value a JSON string (ts too) or `null`. Columns are exactly
`COLUMNS[source]`, but a file may carry one extra trailing column, `ingest_batch` or `exported_at` (EXTRA_COLUMNS).
Money is written with two decimals (`1.20`), in the row's currency for crm (USD, EUR, GBP; FX_TO_USD converts).

Timestamps: canonical is `2024-01-05T10:03:12Z` (UTC, whole seconds). A share `DefectRates.mixed_timezones` of the
ts values (crm ts and signup_ts drawn independently) is written instead, in equal parts, as ISO with an offset
(`2024-01-05T11:03:12+01:00`: wall time at that offset, same instant; offsets from -08:00 to +10:00), naive
`2024-01-05 10:03:12` (means UTC), epoch seconds (`1704449000`) or epoch milliseconds (`1704449000000`). Each denotes
the true instant; they are valid and never labelled as defects.

Ground truth (`truth_root/marketing/`, rewritten on every run)
--------------------------------------------------------------
- `events.parquet`, one row per true event, in time order: event_id (i64, unique, 1..n), person_id (i64), channel
  (paid_search, display, video, social, email, organic_search, direct, referral, or `signup` / `order`), action
  (click, impression, engagement, send, open, session, signup, order), campaign (str|null), ts (datetime[us, UTC]),
  is_conversion (bool: the orders), conversion_value (f64 USD|null: crm amount x FX_TO_USD[currency], rounded to
  cents), cause_event_id (i64|null: the touch that caused an order; null = a baseline conversion). `ts` is the
  instant of the action: the web session a click opened is the same event, its record ts trails by 1-601 s. Signups
  of customers who predate the window have ts before it. Touchpoints = events that are not signups or orders.
- `records.parquet`, one row per source record (duplicate copies excluded): source, record_id, event_id, file
  (relative to the landing root, `/`-separated), line (1-based physical line; a CSV's line 1 is its header, JSONL has
  none), defect (the row's label in defects.parquet, or null). record_id is the ads click_id, the social event_id,
  the crm customer_id (customer rows) or order_id (order rows), the web session_id, or `<message_id>:<event_type>`
  for email. An ad click and its web session (same click_id), a social click and its session, an email click and its
  session each share one event_id.
- `defects.parquet`: source, day (date), file, line (i64|null), defect, kind, detail, record_id, duplicate_of_line.
  Row-level `defect` is duplicate, null, malformed or out_of_range, or `flaky` for rows made bad by flaky mode (then
  `kind` says which of the four). File-level labels have line null: late_file, and extra_column_file (detail = the
  column). `detail` for null: the blanked required column (empty in CSV, JSON null); malformed: ragged_short (last
  field missing), ragged_long (one field too many), bad_ts (ts like `not-a-date`, `2024-02-30T10:00:00Z`),
  bad_number (cost/amount/goal_completions like `N/A`, `"1,23"`, `$1.20`), truncated_json; out_of_range: future_ts
  (ts + FUTURE_SHIFT_DAYS), negative_cost, negative_amount, negative_goal_completions. A duplicate is a
  byte-identical copy of the earlier, clean line `duplicate_of_line` in the same file.
- `identities.parquet`: identifier_type (cookie_id, customer_id, email_hash, social_handle), identifier, person_id,
  seen (it occurs in some landing record, defective or not). email_hash = sha256 hex of the lowercase email.
- `people.parquet`: person_id, customer_since (datetime|null), has_email, has_social_handle, cookies, currency.
- `files.parquet` (= `GenerationSummary.per_file`): source, day, file, rows, defective_rows, late, extra_column,
  arrives_at, status (written / identical / conflict: the last two were already there and left untouched).
- `config.json`: the config and the true model (rates, per-touch conversion probabilities, FX, seasonality).

The world: people have 1-3 cookies, maybe a social handle, maybe an email; ~30% are customers before the window.
Touches are Poisson per person and kind (activity x channel affinity) with weekly and hour-of-day seasonality. Every
touch converts with probability `KINDS[k].conversion_probability` (its true effect); half of the conversions from
touches that open a web session happen in that session, the rest 1 h to days later after a logged-in return visit;
customers and prospects also convert at a baseline rate. A first order makes a prospect a customer. Orders always
follow a logged-in web session (customer_id + cookie); other sessions of customers are logged in on some devices only,
so identity links are partial.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from intelligence.reference import FX_TO_USD
from intelligence.settings import settings

SOURCES = ("ads", "social", "crm", "web", "email")
COLUMNS: dict[str, tuple[str, ...]] = {
    "ads": ("click_id", "cookie_id", "campaign", "channel", "cost", "ts"),
    "social": ("event_id", "cookie_id", "social_handle", "platform", "campaign", "event_type", "ts"),
    "crm": ("record_type", "customer_id", "email_hash", "signup_ts", "order_id", "amount", "currency", "ts"),
    "web": (
        "session_id",
        "cookie_id",
        "customer_id",
        "click_id",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "landing_page",
        "ts",
        "goal_completions",
    ),
    "email": ("message_id", "email_hash", "campaign", "event_type", "ts"),
}
EXTENSION = {"ads": "csv", "social": "jsonl", "crm": "csv", "web": "csv", "email": "csv"}
BATCHES_PER_DAY = {"ads": 1, "social": 4, "crm": 1, "web": 2, "email": 1}
EXTRA_COLUMNS = ("ingest_batch", "exported_at")
AD_CHANNELS = ("paid_search", "display", "video")
PLATFORMS = ("facebook", "instagram", "linkedin", "tiktok", "x")
CURRENCIES = ("USD", "EUR", "GBP")
FUTURE_SHIFT_DAYS = 1826  # out-of-range timestamps: five years after the true instant

DAY = 86_400
NEVER = np.iinfo(np.int64).max
DEFAULT_TOUCHES_PER_PERSON_DAY = 0.35


@dataclass(frozen=True)
class DefectRates:
    """Fractions of rows per file (probabilities per file/day for late_file and extra_column)."""

    duplicate: float = 0.01
    null: float = 0.01
    malformed: float = 0.005
    mixed_timezones: float = 0.2
    late_file: float = 0.05
    extra_column: float = 0.1
    out_of_range: float = 0.002


@dataclass(frozen=True)
class GeneratorConfig:
    start: dt.date
    days: int
    people: int = 5000
    seed: int = 7
    defects: DefectRates = DefectRates()
    flaky_source: str | None = "social"
    flaky_days: tuple[int, ...] = ()
    flaky_defect_rate: float = 0.3
    touchpoints_per_person_per_day: float = DEFAULT_TOUCHES_PER_PERSON_DAY


@dataclass(frozen=True)
class GenerationSummary:
    rows_per_source: dict[str, int]  # data lines (duplicates included, headers excluded) across this world's files
    files_written: int
    files_skipped: int  # already present in landing and left untouched (identical or not)
    files_conflicting: int  # of the skipped, those whose bytes differ from what this config produces
    touchpoints: int  # true marketing touches (events that are not signups or orders)
    people: int
    customers: int
    conversions: int
    defect_labels: int
    seconds: float
    per_file: pl.DataFrame = field(repr=False)  # source, day, file, rows, defective_rows, late, extra_column, ...


# ---------------------------------------------------------------- the world's vocabulary and true model


@dataclass(frozen=True)
class _Kind:
    name: str
    channel: str
    action: str
    base_rate: float  # expected events per person-day at the default volume (0 = derived from another kind)
    conversion_probability: float  # the true effect of one such touch
    has_session: bool  # opens a web session
    group: int  # 0 ads, 1 social, 2 email, 3 web


KINDS: tuple[_Kind, ...] = (
    _Kind("paid_search_click", "paid_search", "click", 0.040, 0.030, True, 0),
    _Kind("display_click", "display", "click", 0.020, 0.004, True, 0),
    _Kind("video_click", "video", "click", 0.010, 0.006, True, 0),
    _Kind("social_impression", "social", "impression", 0.070, 0.0005, False, 1),
    _Kind("social_engagement", "social", "engagement", 0.015, 0.004, False, 1),
    _Kind("social_click", "social", "click", 0.012, 0.020, True, 1),
    _Kind("email_send", "email", "send", 0.080, 0.001, False, 2),
    _Kind("email_open", "email", "open", 0.0, 0.004, False, 2),
    _Kind("email_click", "email", "click", 0.0, 0.030, True, 2),
    _Kind("organic_search", "organic_search", "session", 0.040, 0.020, True, 3),
    _Kind("direct", "direct", "session", 0.030, 0.025, True, 3),
    _Kind("referral", "referral", "session", 0.010, 0.012, True, 3),
    _Kind("return_direct", "direct", "session", 0.0, 0.0, True, 3),
    _Kind("return_organic", "organic_search", "session", 0.0, 0.0, True, 3),
    _Kind("signup", "signup", "signup", 0.0, 0.0, False, 3),
    _Kind("order", "order", "order", 0.0, 0.0, False, 3),
)
(K_SEARCH, K_DISPLAY, K_VIDEO, K_IMPRESSION, K_ENGAGEMENT, K_SOCIAL_CLICK, K_SEND, K_OPEN, K_EMAIL_CLICK) = range(9)
K_ORGANIC, K_DIRECT, K_REFERRAL, K_RETURN_DIRECT, K_RETURN_ORGANIC, K_SIGNUP, K_ORDER = range(9, 16)
INDEPENDENT_KINDS = (K_SEARCH, K_DISPLAY, K_VIDEO, K_IMPRESSION, K_ENGAGEMENT, K_SOCIAL_CLICK)
WEB_KINDS = (K_ORGANIC, K_DIRECT, K_REFERRAL)
P_OPEN, P_CLICK_GIVEN_OPEN = 0.25, 0.15
P_SAME_SESSION = 0.5
BASELINE_CONVERSION = {"customer": 0.001, "prospect": 0.0002}  # per person-day, times activity

CAMPAIGNS: tuple[tuple[str, str], ...] = (
    ("brand_search", "paid_search"),
    ("generic_search", "paid_search"),
    ("competitor_search", "paid_search"),
    ("spring_sale, eu", "paid_search"),
    ("retargeting_display", "display"),
    ("prospecting_display", "display"),
    ("brand_video", "video"),
    ("product_launch_video", "video"),
    ("social_awareness", "social"),
    ("social_retargeting", "social"),
    ("influencer_collab", "social"),
    ("weekly_newsletter", "email"),
    ("winback", "email"),
    ("product_launch_email", "email"),
    ("cart_reminder", "email"),
)
PAGES = (
    "/",
    "/products",
    "/products/widget-pro",
    "/products/widget-mini",
    "/pricing",
    "/blog/how-to-choose-a-widget",
    "/blog/widget-care",
    "/lp/spring-sale",
    "/lp/brand",
    "/lp/retargeting",
    "/cart",
    "/checkout",
    "/account",
)
PAGES_BY_GROUP = {
    "ads": (2, 3, 7, 8, 9),
    "social": (0, 1, 5, 6),
    "email": (1, 2, 3, 4, 7),
    "organic": (0, 5, 6, 1, 2),
    "direct": (0, 1, 4, 12),
    "referral": (0, 5, 6),
    "return": (10, 11, 12),
}
SEARCH_ENGINES = ("google", "bing", "duckduckgo")
REFERRAL_SITES = ("news.ycombinator.com", "reddit.com", "techcrunch.com", "partner-blog.example")
FIRST_NAMES = ("ana", "ben", "chloe", "dev", "emma", "felix", "grace", "hugo", "ivy", "jon", "kira", "liam")
LAST_NAMES = ("smith", "garcia", "muller", "rossi", "dubois", "nowak", "silva", "kim", "patel", "jones")
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "example.org")
HANDLE_WORDS = (("sunny", "quiet", "brave", "lucky", "swift", "mellow", "bold", "witty"),
                ("fox", "owl", "panda", "otter", "lynx", "heron", "koala", "raven"))  # fmt: skip

# Weekly seasonality (Mon..Sun) per group, normalised to mean 1; UTC hour-of-day weights.
_WEEKLY = np.array(
    [
        [1.10, 1.12, 1.08, 1.05, 0.98, 0.80, 0.87],
        [0.92, 0.93, 0.95, 0.98, 1.04, 1.10, 1.08],
        [1.00, 1.50, 0.90, 1.50, 0.90, 0.60, 0.60],
        [1.06, 1.08, 1.06, 1.03, 0.97, 0.88, 0.92],
    ]
)
WEEKLY_SEASONALITY = _WEEKLY / _WEEKLY.mean(axis=1, keepdims=True)
_HOURS = np.array([0.9, 0.6, 0.4, 0.3, 0.3, 0.4, 0.7, 1.1, 1.6, 2.0, 2.2, 2.3,
                   2.4, 2.3, 2.2, 2.2, 2.3, 2.5, 2.7, 2.9, 2.8, 2.4, 1.9, 1.3])  # fmt: skip
HOURLY = _HOURS / _HOURS.sum()
_SEND_HOURS = np.full(24, 0.1)
_SEND_HOURS[[7, 8, 9, 10, 16, 17]] = [3, 5, 4, 2, 2, 2]
SEND_HOURLY = _SEND_HOURS / _SEND_HOURS.sum()

TZ_OFFSETS_MIN = (-480, -300, -240, 60, 120, 330, 540, 600)
GARBAGE_NUMBERS = ("N/A", "#VALUE!", "1,23", "12.3.4", "abc", "$1.20", "--")
GARBAGE_TS = ("not-a-date", "2024-02-30T10:00:00Z", "31/13/2024 25:61", "0000-00-00 00:00:00", "yesterday", "TBD")


def _rng(seed: int, purpose: int, *more: int) -> np.random.Generator:
    """An independent stream per purpose, so adding a draw somewhere never shifts the others."""
    return np.random.default_rng([seed, purpose, *more])


def _mix(index: np.ndarray, salt: int) -> np.ndarray:
    """A bijection on uint64 (splitmix64 finaliser): distinct indexes give distinct, random-looking ids."""
    x = index.astype(np.uint64) ^ np.uint64(salt)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


_HEX_PAIRS = np.array(
    [ord(f"{b:02x}"[0]) | (ord(f"{b:02x}"[1]) << 8) for b in range(256)], dtype="<u2"
)  # little-endian: the two hex chars of a byte, in memory order


def _ids(prefix: str, index: np.ndarray, seed: int, salt_purpose: int) -> pl.Series:
    """`prefix` + 16 hex digits of a seeded bijection of `index`: unique, deterministic, random-looking."""
    salt = int(_rng(seed, salt_purpose).integers(0, 2**63))
    x = _mix(index, salt)
    n, width = x.size, len(prefix) + 16
    text = np.empty((n, width), dtype=np.uint8)
    text[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    text[:, len(prefix) :] = _HEX_PAIRS[x.astype(">u8").view(np.uint8).reshape(-1, 8)].view(np.uint8).reshape(n, 16)
    return pl.Series(text.view(f"S{width}").ravel()).cast(pl.String)


def _take(table: pl.Series, index: np.ndarray) -> pl.Series:
    """table[index], null where index < 0."""
    missing = index < 0
    idx = pl.Series(np.where(missing, 0, index).astype(np.int64))
    values = table.gather(idx)
    return values.set(pl.Series(missing), None) if missing.any() else values


# ---------------------------------------------------------------- simulation


@dataclass
class _People:
    n: int
    activity: np.ndarray
    affinity: np.ndarray  # (n, 4) per group
    n_cookies: np.ndarray
    cookie_first: np.ndarray
    cookie_owner: np.ndarray
    cookie_logs_in: np.ndarray
    has_handle: np.ndarray
    platform_pref: np.ndarray
    planned_signup: np.ndarray
    email_from: np.ndarray
    currency: np.ndarray
    basket_usd: np.ndarray
    signup: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


def _make_people(cfg: GeneratorConfig, start_s: int) -> _People:
    r = _rng(cfg.seed, 1)
    n = cfg.people
    activity = r.gamma(0.8, 1 / 0.8, n)
    affinity = r.gamma(2.0, 0.5, (n, 4))
    n_cookies = r.choice(np.array([1, 2, 3]), n, p=[0.55, 0.3, 0.15])
    cookie_first = np.concatenate([[0], np.cumsum(n_cookies)[:-1]]).astype(np.int64)
    cookie_owner = np.repeat(np.arange(n), n_cookies)
    cookie_logs_in = r.random(cookie_owner.size) < 0.65
    has_handle = r.random(n) < 0.45
    platform_pref = r.integers(0, len(PLATFORMS), n)
    pre_customer = r.random(n) < 0.30
    spontaneous = ~pre_customer & (r.random(n) < 0.04)
    planned = np.full(n, NEVER, dtype=np.int64)
    planned[pre_customer] = start_s - r.integers(1, 730 * DAY, int(pre_customer.sum()))
    planned[spontaneous] = start_s + r.integers(0, cfg.days * DAY, int(spontaneous.sum()))
    consent = r.random(n) < 0.75
    subscriber = ~pre_customer & ~spontaneous & (r.random(n) < 0.12)
    email_from = np.where((pre_customer | spontaneous) & consent, planned, NEVER)
    email_from[subscriber] = start_s - 1
    return _People(
        n=n,
        activity=activity,
        affinity=affinity,
        n_cookies=n_cookies,
        cookie_first=cookie_first,
        cookie_owner=cookie_owner,
        cookie_logs_in=cookie_logs_in,
        has_handle=has_handle,
        platform_pref=platform_pref,
        planned_signup=planned,
        email_from=email_from,
        currency=r.choice(3, n, p=[0.6, 0.25, 0.15]),
        basket_usd=r.lognormal(np.log(60), 0.5, n),
    )


def _pick_cookie(people: _People, person: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Primary device most of the time."""
    n = people.n_cookies[person]
    offset = np.where(n == 1, 0, np.where(n == 2, u >= 0.65, np.where(u < 0.5, 0, np.where(u < 0.8, 1, 2))))
    return people.cookie_first[person] + offset.astype(np.int64)


def _campaigns_for(channel: str) -> np.ndarray:
    return np.array([i for i, (_, c) in enumerate(CAMPAIGNS) if c == channel])


class _Parts:
    """Columns of event rows in compact dtypes, accumulated per kind and concatenated once."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "kind": np.int8(0),
        "person": np.int32(0),
        "ts": np.int64(0),
        "campaign": np.int8(-1),
        "cookie": np.int32(-1),
        "platform": np.int8(-1),
        "handle": False,
        "session_ts": np.int64(-1),
        "page": np.int8(-1),
        "site": np.int8(-1),
        "goal": np.int16(0),
        "cost_cents": np.int32(0),
        "message_key": np.int32(-1),
    }

    def __init__(self, end_s: int) -> None:
        self.end_s = end_s
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, inside: bool = False, /, **cols: np.ndarray) -> None:
        """Add rows, dropping those whose action or web session falls after the window (unless known `inside`)."""
        keep = np.asarray(cols["ts"]) < self.end_s
        if "session_ts" in cols:
            keep &= np.asarray(cols["session_ts"]) < self.end_s
        if inside:
            keep[:] = True
        part = {}
        for name, default in self.DEFAULTS.items():
            dtype = np.asarray(default).dtype
            if name in cols:
                part[name] = np.asarray(cols[name])[keep].astype(dtype, copy=False)
            else:
                part[name] = np.full(int(keep.sum()), default, dtype)
        self.parts.append(part)

    def concat(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.DEFAULTS}


def _draw_sessions(
    r: np.random.Generator, n: int, group: str, click: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lag = (1 + np.minimum(r.exponential(20.0, n), 600)).astype(np.int64) if click else np.zeros(n, np.int64)
    pages = np.array(PAGES_BY_GROUP[group])
    return lag, pages[r.integers(0, pages.size, n)], r.poisson(0.4, n)


def _simulate_touches(cfg: GeneratorConfig, people: _People, start_s: int) -> dict[str, np.ndarray]:
    """Marketing touches as a Poisson process per person and kind, with weekly and daily seasonality."""
    scale = cfg.touchpoints_per_person_per_day / DEFAULT_TOUCHES_PER_PERSON_DAY
    season = WEEKLY_SEASONALITY[:, (cfg.start.weekday() + np.arange(cfg.days)) % 7]
    parts = _Parts(start_s + cfg.days * DAY)
    p = people.n

    def draw_people(r: np.random.Generator, kind: int, who: np.ndarray, weight: np.ndarray) -> np.ndarray:
        k = KINDS[kind]
        expected = k.base_rate * scale * p * season[k.group].sum()  # events in the window
        total = weight.sum()
        return np.repeat(who, r.poisson(weight * (expected / total))) if total > 0 else who[:0]

    def draw_ts(r: np.random.Generator, kind: int, n: int, hourly: np.ndarray) -> np.ndarray:
        weights = season[KINDS[kind].group]
        day = r.choice(cfg.days, n, p=weights / weights.sum())
        hour = r.choice(24, n, p=hourly)
        return start_s + day * DAY + hour * 3600 + r.integers(0, 3600, n)

    everyone = np.arange(p, dtype=np.int32)
    for kind in (*INDEPENDENT_KINDS, *WEB_KINDS):
        r = _rng(cfg.seed, 100 + kind)
        k = KINDS[kind]
        weight = people.activity * people.affinity[:, k.group]
        if kind == K_ENGAGEMENT:
            weight = weight * people.has_handle  # engaging needs an account
        person = draw_people(r, kind, everyone, weight)
        n = person.size
        ts = draw_ts(r, kind, n, HOURLY)
        cookie = _pick_cookie(people, person, r.random(n))
        cols: dict[str, np.ndarray] = {"person": person, "ts": ts, "cookie": cookie}
        if kind in (K_SEARCH, K_DISPLAY, K_VIDEO):
            campaigns = _campaigns_for(k.channel)
            cpc = {K_SEARCH: 1.2, K_DISPLAY: 0.4, K_VIDEO: 0.25}[kind]
            cols["campaign"] = campaigns[r.integers(0, campaigns.size, n)]
            cols["cost_cents"] = np.maximum(1, np.round(r.lognormal(np.log(cpc), 0.6, n) * 100))
            lag, cols["page"], cols["goal"] = _draw_sessions(r, n, "ads", click=True)
            cols["session_ts"] = ts + lag
        elif kind in (K_IMPRESSION, K_ENGAGEMENT, K_SOCIAL_CLICK):
            campaigns = _campaigns_for("social")
            cols["campaign"] = campaigns[r.integers(0, campaigns.size, n)]
            cols["platform"] = np.where(
                r.random(n) < 0.7, people.platform_pref[person], r.integers(0, len(PLATFORMS), n)
            )
            has = people.has_handle[person]
            if kind == K_IMPRESSION:
                cols["handle"] = has & (r.random(n) < 0.3)
            elif kind == K_ENGAGEMENT:
                cols["handle"] = has
                cols["cookie"] = np.where(r.random(n) < 0.2, cookie, -1)
            else:
                cols["handle"] = has & (r.random(n) < 0.5)
                lag, cols["page"], cols["goal"] = _draw_sessions(r, n, "social", click=True)
                cols["session_ts"] = ts + lag
        else:
            group = {K_ORGANIC: "organic", K_DIRECT: "direct", K_REFERRAL: "referral"}[kind]
            _, cols["page"], cols["goal"] = _draw_sessions(r, n, group, click=False)
            cols["session_ts"] = ts
            if kind == K_ORGANIC:
                cols["site"] = r.choice(3, n, p=[0.85, 0.1, 0.05])
            elif kind == K_REFERRAL:
                cols["site"] = r.integers(0, len(REFERRAL_SITES), n)
        parts.add(kind=np.full(n, kind), **cols)

    # Email: sends to people with an email address (from their signup, with consent, or subscribers),
    # then opens and clicks that follow a send.
    r = _rng(cfg.seed, 100 + K_SEND)
    eligible = np.flatnonzero(people.email_from != NEVER).astype(np.int32)
    person = draw_people(r, K_SEND, eligible, np.ones(eligible.size)) if eligible.size else eligible
    ts = draw_ts(r, K_SEND, person.size, SEND_HOURLY)
    keep = ts >= people.email_from[person]
    person, ts = person[keep], ts[keep]
    n = person.size
    campaigns = _campaigns_for("email")
    campaign = campaigns[r.integers(0, campaigns.size, n)]
    message = np.arange(n, dtype=np.int64)
    parts.add(kind=np.full(n, K_SEND), person=person, ts=ts, campaign=campaign, message_key=message)
    opened = np.flatnonzero(r.random(n) < P_OPEN)
    open_ts = ts[opened] + 60 + r.exponential(3 * 3600, opened.size).astype(np.int64)
    parts.add(
        kind=np.full(opened.size, K_OPEN),
        person=person[opened],
        ts=open_ts,
        campaign=campaign[opened],
        message_key=message[opened],
    )
    clicked = np.flatnonzero(r.random(opened.size) < P_CLICK_GIVEN_OPEN)
    src = opened[clicked]
    click_ts = open_ts[clicked] + 5 + r.exponential(120, clicked.size).astype(np.int64)
    lag, page, goal = _draw_sessions(r, clicked.size, "email", click=True)
    parts.add(
        kind=np.full(clicked.size, K_EMAIL_CLICK),
        person=person[src],
        ts=click_ts,
        campaign=campaign[src],
        message_key=message[src],
        cookie=_pick_cookie(people, person[src], r.random(clicked.size)),
        session_ts=click_ts + lag,
        page=page,
        goal=goal,
    )
    return parts.concat()


def _simulate_world(cfg: GeneratorConfig) -> tuple[_People, dict[str, np.ndarray]]:
    """People plus all true events (touches, return visits, signups, orders) as columns sorted by time, with ids."""
    start_s = _epoch(cfg.start)
    end_s = start_s + cfg.days * DAY
    people = _make_people(cfg, start_s)
    t = _simulate_touches(cfg, people, start_s)
    n_touch = t["kind"].size

    # Conversions caused by touches, then baseline conversions.
    r = _rng(cfg.seed, 300)
    q = np.array([k.conversion_probability for k in KINDS])[t["kind"]]
    triggered = r.random(n_touch) < q
    same = (t["session_ts"] >= 0) & (r.random(n_touch) < P_SAME_SESSION)
    later = t["ts"] + 3600 + r.exponential(2 * DAY, n_touch).astype(np.int64)
    conv_at = np.where(same, t["session_ts"] + r.integers(120, 2400, n_touch), later)
    cause = np.flatnonzero(triggered & (conv_at < end_s))
    rb = _rng(cfg.seed, 301)
    rate = people.activity * np.where(
        people.planned_signup < start_s, BASELINE_CONVERSION["customer"], BASELINE_CONVERSION["prospect"]
    )
    n_base = int(rb.poisson(rate.sum() * cfg.days))
    base_person = np.minimum(np.searchsorted(np.cumsum(rate), rb.random(n_base) * rate.sum(), "right"), people.n - 1)
    conv_person = np.concatenate([t["person"][cause], base_person])
    conv_ts = np.concatenate([conv_at[cause], start_s + rb.integers(0, cfg.days * DAY, n_base)])
    conv_cause = np.concatenate([cause, np.full(n_base, -1)])
    conv_same = np.concatenate([same[cause], np.zeros(n_base, bool)])
    n_conv = conv_ts.size

    # Buying makes you a customer: the first order signs a prospect up seconds before it.
    first = np.full(people.n, NEVER, dtype=np.int64)
    np.minimum.at(first, conv_person, conv_ts)
    rs = _rng(cfg.seed, 302)
    conv_signup = np.where(first < NEVER, np.maximum(first - rs.integers(20, 51, people.n), start_s), NEVER)
    people.signup = np.minimum(people.planned_signup, conv_signup)

    # Orders happen in a logged-in session: the click's own session, or a return visit.
    forced_login = np.zeros(n_touch, bool)
    forced_login[conv_cause[conv_same]] = True
    t["goal"][conv_cause[conv_same]] += 1
    ret = np.flatnonzero(~conv_same)
    rr = _rng(cfg.seed, 303)
    ret_person = conv_person[ret]
    ret_ts = np.maximum(conv_ts[ret] - rr.integers(60, 1800, ret.size), start_s)
    ret_kind = np.where(rr.random(ret.size) < 0.7, K_RETURN_DIRECT, K_RETURN_ORGANIC)
    ret_pages = np.array(PAGES_BY_GROUP["return"])
    parts = _Parts(end_s)
    parts.add(True, **t)
    parts.add(
        kind=ret_kind,
        person=ret_person,
        ts=ret_ts,
        cookie=_pick_cookie(people, ret_person, rr.random(ret.size)),
        session_ts=ret_ts,
        page=ret_pages[rr.integers(0, ret_pages.size, ret.size)],
        site=np.where(ret_kind == K_RETURN_ORGANIC, 0, -1),
        goal=rr.poisson(0.4, ret.size) + 1,
    )
    customers = np.flatnonzero(people.signup != NEVER)
    parts.add(kind=np.full(customers.size, K_SIGNUP), person=customers, ts=people.signup[customers])
    parts.add(kind=np.full(n_conv, K_ORDER), person=conv_person, ts=conv_ts)
    ev = parts.concat()
    n_ev = ev["kind"].size
    forced = np.concatenate([forced_login, np.ones(ret.size, bool), np.zeros(n_ev - n_touch - ret.size, bool)])
    cause_pre = np.full(n_ev, -1, dtype=np.int64)
    cause_pre[n_ev - n_conv :] = conv_cause

    # Logged in: a customer, on a device they log in with, most of the time — or forced by an order.
    ro = _rng(cfg.seed, 304)
    session = ev["session_ts"] >= 0
    cookie_ok = people.cookie_logs_in[np.maximum(ev["cookie"], 0)]
    logged_in = session & (
        forced | ((people.signup[ev["person"]] <= ev["session_ts"]) & cookie_ok & (ro.random(n_ev) < 0.6))
    )

    # Order amounts in the customer's currency; the truth value converts them back at FX_TO_USD.
    currency = np.full(n_ev, -1, dtype=np.int8)
    amount_cents = np.zeros(n_ev, dtype=np.int32)
    orders = slice(n_ev - n_conv, n_ev)
    fx = np.array([FX_TO_USD[c] for c in CURRENCIES])
    currency[orders] = people.currency[conv_person]
    usd = people.basket_usd[conv_person] * ro.lognormal(0.0, 0.4, n_conv)
    amount_cents[orders] = np.maximum(100, np.round(usd / fx[currency[orders]] * 100))

    ev.update(logged_in=logged_in, currency=currency, amount_cents=amount_cents)
    order = np.argsort(_sort_key(ev["ts"], ev["kind"].astype(np.int64), len(KINDS), np.arange(n_ev), n_ev))
    event_id_of = np.empty(n_ev, dtype=np.int64)
    event_id_of[order] = np.arange(1, n_ev + 1)
    world = {k: v[order] for k, v in ev.items()}
    world["event_id"] = np.arange(1, n_ev + 1, dtype=np.int64)
    cause = cause_pre[order]
    world["cause_event_id"] = np.where(cause >= 0, event_id_of[np.maximum(cause, 0)], -1)
    return people, world


def _sort_key(
    major: np.ndarray, minor: np.ndarray, minor_span: int | None, tie: np.ndarray | None, tie_span: int | None
) -> np.ndarray:
    """Pack (major, minor[, tie]) into one int64 ordered like the tuples, so one argsort replaces a lexsort."""
    if major.size == 0:
        return np.zeros(0, dtype=np.int64)
    major_lo, minor_lo = int(major.min()), int(minor.min())
    span = minor_span or int(minor.max()) - minor_lo + 1
    bound = (int(major.max()) - major_lo + 1) * span * (tie_span or 1)
    if bound >= 2**62:
        raise OverflowError("sort key does not fit in int64; generate fewer days or events per run")
    key = (major - major_lo) * span + (minor - minor_lo)
    return key * tie_span + tie if tie is not None and tie_span else key


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


# ---------------------------------------------------------------- identifiers and source records


@dataclass
class _Names:
    cookie: pl.Series  # per cookie index
    customer: pl.Series  # per person (null if never a customer)
    email_hash: pl.Series  # per person (null if no email)
    handle: pl.Series  # per person (null if none)


def _names(cfg: GeneratorConfig, people: _People) -> _Names:
    r = _rng(cfg.seed, 400)
    p = people.n
    cookie = _ids("ck_", np.arange(people.cookie_owner.size), cfg.seed, 401)
    rank = np.full(p, -1, dtype=np.int64)
    customers = np.flatnonzero(people.signup != NEVER)
    order = customers[np.argsort(people.signup[customers], kind="stable")]
    rank[order] = np.arange(order.size)
    customer = _take(pl.select(pl.lit("C") + pl.int_range(100_001, 100_001 + p).cast(pl.String)).to_series(), rank)
    has_email = (people.signup != NEVER) | (people.email_from != NEVER)
    tag = r.permutation(p)  # unique per person, so emails and handles are unique
    first, last, dom = r.integers(0, len(FIRST_NAMES), p), r.integers(0, len(LAST_NAMES), p), r.integers(0, 4, p)
    who = np.flatnonzero(has_email)
    emails = pl.select(  # already lowercase, which is what gets hashed
        pl.Series(FIRST_NAMES).gather(first[who])
        + "."
        + pl.Series(LAST_NAMES).gather(last[who])
        + pl.Series(tag[who]).cast(pl.String)
        + "@"
        + pl.Series(EMAIL_DOMAINS).gather(dom[who])
    ).to_series()
    digests = pl.Series([hashlib.sha256(e.encode()).hexdigest() for e in emails.to_list()], dtype=pl.String)
    email_hash = _take(digests, np.where(has_email, np.searchsorted(who, np.arange(p)), -1))
    adj, noun = HANDLE_WORDS
    handle_text = pl.select(
        pl.lit("@")
        + pl.Series(adj).gather(tag % len(adj))
        + "_"
        + pl.Series(noun).gather((tag // len(adj)) % len(noun))
        + "_"
        + pl.Series(tag // (len(adj) * len(noun))).cast(pl.String)
    ).to_series()
    handle = _take(handle_text, np.where(people.has_handle, np.arange(p), -1))
    return _Names(cookie, customer, email_hash, handle)


SOURCE_FIELDS = {
    "ads": ("event_id", "kind", "ts", "cookie", "campaign", "cost_cents"),
    "social": ("event_id", "kind", "ts", "cookie", "campaign", "person", "handle", "platform"),
    "email": ("event_id", "kind", "ts", "campaign", "person", "message_key"),
    "web": (
        "event_id",
        "kind",
        "session_ts",
        "cookie",
        "campaign",
        "person",
        "logged_in",
        "platform",
        "site",
        "page",
        "goal",
    ),
    "crm": ("event_id", "kind", "ts", "person", "amount_cents", "currency"),
}


def _source_index(cfg: GeneratorConfig, ev: dict[str, np.ndarray], source: str) -> tuple[np.ndarray, np.ndarray]:
    """Event indexes reported by `source`, grouped by landing day (stable, so event order within a day),
    plus the day boundaries: the rows of day d are idx[bounds[d]:bounds[d + 1]]."""
    kind = ev["kind"]
    mask = {
        "ads": kind <= K_VIDEO,
        "social": (kind >= K_IMPRESSION) & (kind <= K_SOCIAL_CLICK),
        "email": (kind >= K_SEND) & (kind <= K_EMAIL_CLICK),
        "web": ev["session_ts"] >= 0,
        "crm": (kind == K_SIGNUP) | (kind == K_ORDER),
    }[source]
    idx = np.flatnonzero(mask)
    record_ts = ev["session_ts" if source == "web" else "ts"][idx]
    day = np.clip((record_ts - _epoch(cfg.start)) // DAY, 0, cfg.days - 1)  # pre-window customers: day 0
    order = np.argsort(day, kind="stable")
    return idx[order], np.searchsorted(day[order], np.arange(cfg.days + 1))


def _source_frame(
    source: str, cfg: GeneratorConfig, ev: dict[str, np.ndarray], idx: np.ndarray, names: _Names, orders: np.ndarray
) -> pl.DataFrame:
    """The records `source` exports about events `idx`: `_record_id`, `_event`, `_ts`, `_class`, then COLUMNS.

    Timestamps stay epoch seconds (i64) and money stays cents until defects and formats are applied.
    """
    e = {k: ev[k][idx] for k in SOURCE_FIELDS[source]}
    kind, n = e["kind"], idx.size
    campaign_names = pl.Series([c for c, _ in CAMPAIGNS])
    head = {"_event": e["event_id"], "_class": np.zeros(n, np.int8)}
    if source == "ads":
        click_ids = _ids("clk_", e["event_id"], cfg.seed, 410)
        return pl.DataFrame(
            {
                "_record_id": click_ids,
                **head,
                "_ts": e["ts"],
                "click_id": click_ids,
                "cookie_id": _take(names.cookie, e["cookie"]),
                "campaign": _take(campaign_names, e["campaign"]),
                "channel": pl.Series(AD_CHANNELS).gather(kind),
                "cost": e["cost_cents"],
                "ts": e["ts"],
            }
        )
    if source == "social":
        social_ids = _ids("se_", e["event_id"], cfg.seed, 411)
        return pl.DataFrame(
            {
                "_record_id": social_ids,
                **head,
                "_ts": e["ts"],
                "event_id": social_ids,
                "cookie_id": _take(names.cookie, e["cookie"]),
                "social_handle": _take(names.handle, np.where(e["handle"], e["person"], -1)),
                "platform": _take(pl.Series(PLATFORMS), e["platform"]),
                "campaign": _take(campaign_names, e["campaign"]),
                "event_type": pl.Series(["impression", "engagement", "click"]).gather(kind - K_IMPRESSION),
                "ts": e["ts"],
            }
        )
    if source == "email":
        message_ids = _ids("msg_", e["message_key"], cfg.seed, 412)
        event_type = pl.Series(["send", "open", "click"]).gather(kind - K_SEND)
        return pl.DataFrame(
            {
                "_record_id": pl.select(message_ids + ":" + event_type).to_series(),
                **head,
                "_ts": e["ts"],
                "message_id": message_ids,
                "email_hash": _take(names.email_hash, e["person"]),
                "campaign": _take(campaign_names, e["campaign"]),
                "event_type": event_type,
                "ts": e["ts"],
            }
        )
    if source == "web":
        session_ids = _ids("ses_", e["event_id"], cfg.seed, 413)
        utm_source, utm_medium = _utm(kind, e["platform"], e["site"])
        is_ad = kind <= K_VIDEO
        with_campaign = is_ad | (kind == K_SOCIAL_CLICK) | (kind == K_EMAIL_CLICK)
        return pl.DataFrame(
            {
                "_record_id": session_ids,
                **head,
                "_ts": e["session_ts"],
                "session_id": session_ids,
                "cookie_id": _take(names.cookie, e["cookie"]),
                "customer_id": _take(names.customer, np.where(e["logged_in"], e["person"], -1)),
                "click_id": _take(_ids("clk_", e["event_id"], cfg.seed, 410), np.where(is_ad, np.arange(n), -1)),
                "utm_source": utm_source,
                "utm_medium": utm_medium,
                "utm_campaign": _take(campaign_names, np.where(with_campaign, e["campaign"], -1)),
                "landing_page": pl.Series(PAGES).gather(e["page"]),
                "ts": e["session_ts"],
                "goal_completions": e["goal"].astype(np.int64),
            }
        )
    # crm: customer rows (signups) and order rows, interleaved in time order
    is_order = kind == K_ORDER
    order_no = np.searchsorted(orders, idx) + 1  # orders are numbered in time order over the whole world
    order_ids = pl.select(pl.lit("ORD-") + pl.Series(order_no).cast(pl.String).str.zfill(8)).to_series()
    order_ids = _take(order_ids, np.where(is_order, np.arange(n), -1))
    customer_ids = _take(names.customer, e["person"])
    return pl.DataFrame(
        {
            "_record_id": pl.select(pl.when(pl.Series(is_order)).then(order_ids).otherwise(customer_ids)).to_series(),
            **head,
            "_class": is_order.astype(np.int8),
            "_ts": e["ts"],
            "record_type": pl.Series(["customer", "order"]).gather(is_order.astype(np.int64)),
            "customer_id": customer_ids,
            "email_hash": _take(names.email_hash, np.where(is_order, -1, e["person"])),
            "signup_ts": pl.Series(e["ts"]).set(pl.Series(is_order), None),
            "order_id": order_ids,
            "amount": pl.Series(e["amount_cents"].astype(np.int64)).set(pl.Series(~is_order), None),
            "currency": _take(pl.Series(CURRENCIES), np.where(is_order, e["currency"], -1)),
            "ts": e["ts"],
        }
    )


def _utm(kind: np.ndarray, platform: np.ndarray, site: np.ndarray) -> tuple[pl.Series, pl.Series]:
    """utm_source / utm_medium of each web session, from what opened it (both empty for a direct visit)."""
    vocab = ["google", "youtube", "newsletter", "cpc", "display", "video", "social", "email", "organic", "referral"]
    vocab += [*PLATFORMS, *SEARCH_ENGINES, *REFERRAL_SITES]
    at = vocab.index
    source = np.full(kind.size, -1)
    medium = np.full(kind.size, -1)
    for k, src, med in (
        (K_SEARCH, at("google"), at("cpc")),
        (K_DISPLAY, at("google"), at("display")),
        (K_VIDEO, at("youtube"), at("video")),
        (K_SOCIAL_CLICK, -1, at("social")),
        (K_EMAIL_CLICK, at("newsletter"), at("email")),
        (K_ORGANIC, -1, at("organic")),
        (K_RETURN_ORGANIC, -1, at("organic")),
        (K_REFERRAL, -1, at("referral")),
    ):
        source[kind == k] = src
        medium[kind == k] = med
    social = kind == K_SOCIAL_CLICK
    source[social] = at(PLATFORMS[0]) + platform[social]
    organic = (kind == K_ORGANIC) | (kind == K_RETURN_ORGANIC)
    source[organic] = at(SEARCH_ENGINES[0]) + site[organic]
    referral = kind == K_REFERRAL
    source[referral] = at(REFERRAL_SITES[0]) + site[referral]
    table = pl.Series(vocab)
    return _take(table, source), _take(table, medium)


# ---------------------------------------------------------------- defects, formats, lines


@dataclass(frozen=True)
class _Spec:
    required: tuple[tuple[str, ...], ...]  # per row class (crm: 0 customer, 1 order)
    numeric: tuple[str | None, ...]  # per row class: the numeric column, if any


SPECS: dict[str, _Spec] = {
    "ads": _Spec((COLUMNS["ads"],), ("cost",)),
    "social": _Spec((("event_id", "platform", "campaign", "event_type", "ts"),), (None,)),
    "crm": _Spec(
        (
            ("record_type", "customer_id", "email_hash", "signup_ts", "ts"),
            ("record_type", "customer_id", "order_id", "amount", "currency", "ts"),
        ),
        (None, "amount"),
    ),
    "web": _Spec((("session_id", "cookie_id", "landing_page", "ts", "goal_completions"),), ("goal_completions",)),
    "email": _Spec((COLUMNS["email"],), (None,)),
}
MONEY_COLUMNS = ("cost", "amount")
TS_COLUMNS = ("signup_ts", "ts")
ROW_KINDS = ("", "duplicate", "null", "malformed", "out_of_range")
MALFORMED = ("ragged_short", "ragged_long", "bad_ts", "bad_number", "truncated_json")
_OFFSET_TEXT = [f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in TZ_OFFSETS_MIN]


_TIME_OF_DAY: list[pl.Series] = []


def _time_of_day() -> pl.Series:
    """'HH:MM:SS' for every second of a day, built once: formatting by lookup beats strftime."""
    if not _TIME_OF_DAY:
        _TIME_OF_DAY.append(
            pl.Series([f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)])
        )
    return _TIME_OF_DAY[0]


def _format_ts(ts: pl.Series, fmt: np.ndarray, offset: np.ndarray) -> pl.Series:
    """Epoch seconds -> text per row: fmt 0 canonical `...Z`, 1 ISO with offset, 2 naive UTC, 3 epoch s, 4 epoch ms."""
    missing = ts.is_null().to_numpy()
    secs = ts.fill_null(0).to_numpy().astype(np.int64)
    minutes = np.where(fmt == 1, np.asarray(TZ_OFFSETS_MIN)[offset], 0)
    wall = secs + minutes * 60  # the wall-clock time written (differs from UTC only with an offset)
    day = wall // DAY
    lo = int(day.min(initial=0))
    present = np.zeros(int(day.max(initial=0)) - lo + 1, dtype=bool)  # a few thousand days at most
    present[day - lo] = True
    days = np.flatnonzero(present) + lo
    day_index = (np.cumsum(present) - 1)[day - lo]
    epoch = dt.date(1970, 1, 1)
    dates = pl.Series([(epoch + dt.timedelta(days=int(d))).isoformat() for d in days], dtype=pl.String)
    suffix = pl.Series(["Z", *_OFFSET_TEXT, ""]).gather(
        np.where(fmt == 0, 0, np.where(fmt == 1, 1 + offset, 1 + len(_OFFSET_TEXT)))
    )
    iso = pl.concat_str(
        [
            dates.gather(day_index.ravel()),
            pl.Series(["T", " "]).gather((fmt == 2).astype(np.int64)),
            _time_of_day().gather(wall - day * DAY),
            suffix,
        ]
    )
    f = pl.Series(fmt)
    text = pl.select(
        pl.when(f <= 2)
        .then(iso)
        .when(f == 3)
        .then(pl.Series(secs).cast(pl.String))
        .otherwise(pl.Series(secs * 1000).cast(pl.String))
    ).to_series()
    return text.set(pl.Series(missing), None).alias(ts.name) if missing.any() else text.alias(ts.name)


def _format_money(cents: pl.Series) -> pl.Series:
    c = pl.col("c")
    sign = pl.when(c < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    text = sign + (c.abs() // 100).cast(pl.String) + "." + (c.abs() % 100).cast(pl.String).str.zfill(2)
    return pl.DataFrame({"c": cents}).select(text).to_series().alias(cents.name)


def _csv_quote(values: pl.Series) -> pl.Series:
    v = pl.col("v")
    quoted = pl.when(v.str.contains(r'[",\r\n]')).then('"' + v.str.replace_all('"', '""', literal=True) + '"')
    return pl.DataFrame({"v": values}).select(quoted.otherwise(v)).to_series().alias(values.name)


@dataclass
class _Rendered:
    files: pl.DataFrame  # _file, day, file, late, extra_column, header, arrives_at, rows, defective_rows, _first
    lines: pl.Series  # physical lines of all files, file after file; a file's are lines[_first : _first + rows]
    records: pl.DataFrame
    defects: pl.DataFrame


def _file_table(source: str, cfg: GeneratorConfig, day: int, late_rows: bool) -> pl.DataFrame:
    """The regular batch files of one day (all of them, even empty), plus its late file if it got rows.

    `_file` is the batch slot (0, 1, ...) or 99 for the late file."""
    r = _rng(cfg.seed, 550 + SOURCES.index(source), day)
    batches = BATCHES_PER_DAY[source]
    slots = [*range(batches), *([99] if late_rows else [])]
    ext = EXTENSION[source]
    extra = r.random(len(slots)) < cfg.defects.extra_column
    extra_pick = r.integers(0, len(EXTRA_COLUMNS), len(slots))
    late_delay = DAY * int(r.integers(1, 4)) + int(r.integers(0, DAY))
    date = cfg.start + dt.timedelta(days=day)
    rows = []
    for i, slot in enumerate(slots):
        late = slot == 99
        tag = "late01" if late else f"{slot + 1:02d}"
        arrives = _epoch(date) + (DAY + late_delay if late else (slot + 1) * (DAY // batches) + 900)
        arrives_at = dt.datetime.fromtimestamp(arrives, dt.UTC)
        column = EXTRA_COLUMNS[extra_pick[i]] if extra[i] else None
        value = arrives_at.strftime("%Y-%m-%dT%H:%M:%SZ") if column == "exported_at" else f"{date}_{tag}"
        header = ",".join(COLUMNS[source]) + (f",{column}" if column else "") + "\n" if ext == "csv" else ""
        name = f"{source}/{date}/{source}_{date}_{tag}.{ext}"
        rows.append((slot, date, name, late, column, value, header, arrives_at))
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "_file": pl.Int64,
        "day": pl.Date,
        "file": pl.String,
        "late": pl.Boolean,
        "extra_column": pl.String,
        "extra_value": pl.String,
        "header": pl.String,
        "arrives_at": pl.Datetime("us", "UTC"),
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _render(source: str, raw: pl.DataFrame, cfg: GeneratorConfig, day: int) -> _Rendered:
    """Assign one day's records to files, inject defects, format values and build the physical lines."""
    cols = COLUMNS[source]
    spec = SPECS[source]
    is_csv = EXTENSION[source] == "csv"
    start_s = _epoch(cfg.start)
    rates = cfg.defects
    r = _rng(cfg.seed, 500 + SOURCES.index(source), day)
    n = raw.height

    # Which file each record lands in (time-of-day batch, or the late file), then file order by time.
    rec_ts = raw["_ts"].to_numpy()
    batch = np.where(rec_ts < start_s, 0, ((rec_ts - start_s) % DAY) * BATCHES_PER_DAY[source] // DAY)
    late = (r.random() < rates.late_file) & (r.random(n) < r.uniform(0.05, 0.2))
    file_key = np.where(late, 99, batch)
    # rows arrive in event-id order, so a stable sort on (file, ts) breaks ties by event id
    order = np.argsort(_sort_key(file_key, rec_ts, None, None, None), kind="stable")
    raw = raw[order]
    file_key = file_key[order]
    files = _file_table(source, cfg, day, bool(late.any()))
    file_index = np.searchsorted(files["_file"].to_numpy(), file_key)

    # Row-level defects: at most one kind per row (0 none, 1 duplicated, 2 null, 3 malformed, 4 out of range).
    cls = raw["_class"].to_numpy().astype(np.int64)
    flaky_day = source == cfg.flaky_source and day in cfg.flaky_days
    flaky = np.logical_and(flaky_day, r.random(n) < cfg.flaky_defect_rate)
    edges = np.cumsum([rates.duplicate, rates.null, rates.malformed, rates.out_of_range])
    kind = (np.searchsorted(edges, r.random(n), side="right") + 1) % 5
    kind = np.where(flaky, r.choice(np.array([1, 2, 3, 4]), n, p=[0.2, 0.3, 0.3, 0.2]), kind)
    numeric_by_class = [cols.index(c) if c else -1 for c in spec.numeric]
    numeric_col = np.array(numeric_by_class)[cls]
    req_len = np.array([len(rq) for rq in spec.required])
    req_table = np.full((len(spec.required), int(req_len.max())), -1)
    for i, rq in enumerate(spec.required):
        req_table[i, : len(rq)] = [cols.index(c) for c in rq]
    null_col = np.where(kind == 2, req_table[cls, (r.random(n) * req_len[cls]).astype(np.int64)], -1)
    if is_csv:
        shape = r.integers(0, 4, n)
        shape = np.where((shape == 3) & (numeric_col < 0), 2, shape)
    else:
        shape = np.where(r.random(n) < 0.5, 4, 2)
    shape = np.where(kind == 3, shape, -1)
    negative = (kind == 4) & (r.random(n) < 0.5) & (numeric_col >= 0)
    future = (kind == 4) & ~negative
    garbage_num = r.integers(0, len(GARBAGE_NUMBERS), n)
    garbage_ts = r.integers(0, len(GARBAGE_TS), n)
    ts_formats = {
        c: (np.where(r.random(n) < rates.mixed_timezones, r.integers(1, 5, n), 0), r.integers(0, len(_OFFSET_TEXT), n))
        for c in TS_COLUMNS
        if c in cols
    }

    # Values to text, with the defects applied to the few rows that carry them.
    fields: dict[str, pl.Series] = {}
    for j, c in enumerate(cols):
        s = raw[c]
        if c == "ts":
            hit = np.flatnonzero(future)
            s = s.scatter(hit, s.gather(hit) + FUTURE_SHIFT_DAYS * DAY) if hit.size else s
        if c in ts_formats:
            s = _format_ts(s, *ts_formats[c])
        elif j in numeric_by_class:
            hit = np.flatnonzero(negative & (numeric_col == j))
            if hit.size:
                s = s.scatter(hit, -s.gather(hit) if c in MONEY_COLUMNS else -(s.gather(hit) + 1))
            s = _format_money(s) if c in MONEY_COLUMNS else s.cast(pl.String)
        if c in ("campaign", "utm_campaign") and is_csv:
            s = _csv_quote(s)
        if c == "ts" and (hit := np.flatnonzero(shape == 2)).size:
            s = s.scatter(hit, pl.Series(GARBAGE_TS).gather(garbage_ts[hit]))
        if (hit := np.flatnonzero((shape == 3) & (numeric_col == j))).size:
            garbage = [f'"{g}"' if "," in g else g for g in GARBAGE_NUMBERS]
            s = s.scatter(hit, pl.Series(garbage).gather(garbage_num[hit]))
        if (hit := np.flatnonzero(null_col == j)).size:
            s = s.scatter(hit, None)
        fields[c] = s.alias(c)

    extra_col = files["extra_column"].gather(file_index).alias("_extra_col")
    extra_val = files["extra_value"].gather(file_index).alias("_extra_val")
    frame = pl.DataFrame([*fields.values(), extra_col, extra_val])
    has_extra = pl.col("_extra_col").is_not_null()
    if is_csv:
        line = pl.concat_str([pl.col(c).fill_null("") for c in cols], separator=",")
        line = line + pl.when(has_extra).then("," + pl.col("_extra_val")).otherwise(pl.lit(""))
    else:
        pieces = [
            pl.lit(f'"{c}":') + pl.when(pl.col(c).is_null()).then(pl.lit("null")).otherwise('"' + pl.col(c) + '"')
            for c in cols
        ]
        extra = pl.when(has_extra).then(',"' + pl.col("_extra_col") + '":"' + pl.col("_extra_val") + '"')
        line = "{" + pl.concat_str(pieces, separator=",") + extra.otherwise(pl.lit("")) + "}"
    text = frame.select(line.alias("text")).to_series()
    del frame, fields
    for code, edit in ((0, r",[^,]*$"), (1, None), (4, None)):
        hit = np.flatnonzero(shape == code)
        if not hit.size:
            continue
        t = text.gather(hit)
        if code == 0:  # ragged: one field short
            t = t.str.replace(edit or "", "")
        elif code == 1:  # ragged: one field too many
            t = t + ",unexpected"
        else:  # JSON cut short
            t = pl.select(t.str.slice(0, (t.str.len_chars() * 0.6).cast(pl.Int64))).to_series()
        text = text.scatter(hit, t)

    # Each duplicate copy goes somewhere after its original in the same file.
    starts = np.r_[0, np.flatnonzero(np.diff(file_key)) + 1]
    sizes = np.diff(np.r_[starts, n])
    pos = np.arange(n) - np.repeat(starts, sizes)
    size = np.repeat(sizes, sizes)
    dup = np.flatnonzero(kind == 1)
    copy_key = pos[dup] + 0.5 + np.floor(r.random(dup.size) * (size[dup] - pos[dup]))
    all_keys = np.concatenate([pos.astype(np.float64), copy_key])
    all_files = np.concatenate([file_key, file_key[dup]])
    perm = np.lexsort((all_keys, all_files))
    sorted_files = all_files[perm]
    first_line = 2 if is_csv else 1
    file_starts = np.r_[0, np.flatnonzero(np.diff(sorted_files)) + 1]
    line_sorted = np.arange(perm.size) - np.repeat(file_starts, np.diff(np.r_[file_starts, perm.size])) + first_line
    line_of = np.empty(perm.size, dtype=np.int64)
    line_of[perm] = line_sorted
    orig_line, copy_line = line_of[:n], line_of[n:]
    lines = pl.concat([text, text.gather(dup)]).gather(perm)

    # Ground truth for every record and every defect.
    file_name = files["file"].gather(file_index)
    file_day = files["day"].gather(file_index)
    label_code = np.where(kind <= 1, -1, np.where(flaky, 5, kind))
    labels = pl.Series([None, None, "null", "malformed", "out_of_range", "flaky"], dtype=pl.String)
    label = labels.gather(np.where(label_code < 0, 0, label_code))
    records = pl.DataFrame(
        {
            "source": pl.Series([source] * n, dtype=pl.String),
            "record_id": raw["_record_id"],
            "event_id": raw["_event"],
            "file": file_name,
            "line": orig_line,
            "defect": label,
        }
    )
    bad = np.flatnonzero(kind >= 2)
    names = pl.Series(list(cols))
    detail = pl.select(
        pl.when(pl.Series(null_col[bad]) >= 0)
        .then(names.gather(np.maximum(null_col[bad], 0)))
        .when(pl.Series(shape[bad]) >= 0)
        .then(pl.Series(MALFORMED).gather(np.maximum(shape[bad], 0)))
        .when(pl.Series(future[bad]))
        .then(pl.lit("future_ts"))
        .otherwise("negative_" + names.gather(np.maximum(numeric_col[bad], 0)))
    ).to_series()
    row_defects = pl.DataFrame(
        {
            "day": file_day.gather(bad),
            "file": file_name.gather(bad),
            "line": orig_line[bad],
            "defect": label.gather(bad),
            "kind": pl.Series(ROW_KINDS).gather(kind[bad]),
            "detail": detail,
            "record_id": raw["_record_id"].gather(bad),
            "duplicate_of_line": pl.Series([None] * bad.size, dtype=pl.Int64),
        }
    )
    copy_rows = pl.DataFrame(
        {
            "day": file_day.gather(dup),
            "file": file_name.gather(dup),
            "line": copy_line,
            "defect": pl.Series(np.where(flaky[dup], "flaky", "duplicate").tolist(), dtype=pl.String),
            "kind": pl.Series(["duplicate"] * dup.size, dtype=pl.String),
            "detail": pl.Series([None] * dup.size, dtype=pl.String),
            "record_id": raw["_record_id"].gather(dup),
            "duplicate_of_line": orig_line[dup],
        }
    )
    file_level = pl.concat(
        [
            files.filter(pl.col("late")).select(
                "day", "file", defect=pl.lit("late_file"), detail=pl.lit(None, pl.String)
            ),
            files.filter(pl.col("extra_column").is_not_null()).select(
                "day", "file", defect=pl.lit("extra_column_file"), detail=pl.col("extra_column")
            ),
        ]
    ).select(
        "day",
        "file",
        pl.lit(None, pl.Int64).alias("line"),
        "defect",
        pl.lit(None, pl.String).alias("kind"),
        "detail",
        pl.lit(None, pl.String).alias("record_id"),
        pl.lit(None, pl.Int64).alias("duplicate_of_line"),
    )
    row_level = pl.concat([row_defects, copy_rows])
    defects = pl.concat([row_level, file_level]).select(pl.lit(source).alias("source"), pl.all())
    per_file_rows = np.bincount(np.searchsorted(files["_file"].to_numpy(), sorted_files), minlength=files.height)
    first_row = np.r_[0, np.cumsum(per_file_rows)[:-1]]
    per_file_bad = np.bincount(np.concatenate([file_index[bad], file_index[dup]]), minlength=files.height)
    files = files.with_columns(
        rows=pl.Series(per_file_rows, dtype=pl.Int64),
        defective_rows=pl.Series(per_file_bad, dtype=pl.Int64),
        _first=pl.Series(first_row, dtype=pl.Int64),
    )
    return _Rendered(files=files, lines=lines, records=records, defects=defects.sort("file", "line", nulls_last=False))


# ---------------------------------------------------------------- writing


def _write_new(path: Path, data: bytes) -> str:
    """Create `path` atomically with `data`; never touch an existing file. Returns written/identical/conflict."""
    if path.exists():
        return "identical" if path.read_bytes() == data else "conflict"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"  # hidden, so landing sensors never pick it up
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)  # fails if the file appeared meanwhile: no overwrite, ever
    except FileExistsError:
        return "identical" if path.read_bytes() == data else "conflict"
    except OSError:  # filesystems without hard links
        if path.exists():
            return "identical" if path.read_bytes() == data else "conflict"
        os.replace(tmp, path)
        return "written"
    finally:
        tmp.unlink(missing_ok=True)
    return "written"


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.write_parquet(tmp, compression="zstd", compression_level=1)
    os.replace(tmp, path)


def _file_bytes(header: str, lines: pl.Series) -> bytes:
    buf = io.BytesIO()
    buf.write(header.encode())
    if lines.len():
        lines.to_frame().write_csv(buf, include_header=False, quote_style="never", line_terminator="\n")
    return buf.getvalue()


def _config_json(cfg: GeneratorConfig) -> str:
    def default(o: object) -> object:
        if isinstance(o, dt.date):
            return o.isoformat()
        raise TypeError(type(o))

    model = {
        "default_touchpoints_per_person_per_day": DEFAULT_TOUCHES_PER_PERSON_DAY,
        "kinds": [asdict(k) for k in KINDS],
        "p_open": P_OPEN,
        "p_click_given_open": P_CLICK_GIVEN_OPEN,
        "p_same_session_conversion": P_SAME_SESSION,
        "baseline_conversion_per_person_day": BASELINE_CONVERSION,
        "fx_to_usd": FX_TO_USD,
        "weekly_seasonality_mon_to_sun": {
            g: WEEKLY_SEASONALITY[i].round(4).tolist() for i, g in enumerate(("ads", "social", "email", "web"))
        },
        "future_shift_days": FUTURE_SHIFT_DAYS,
    }
    return json.dumps({"config": asdict(cfg), "model": model}, indent=2, sort_keys=True, default=default) + "\n"


# ---------------------------------------------------------------- entry points


def generate_marketing(
    config: GeneratorConfig, landing_root: Path, truth_root: Path, progress: bool = False
) -> GenerationSummary:
    """Simulate the world of `config`, land its source files (never overwriting) and write the ground truth."""
    if config.days < 1 or config.people < 1:
        raise ValueError("days and people must be at least 1")
    if config.flaky_source is not None and config.flaky_source not in SOURCES:
        raise ValueError(f"flaky_source must be one of {SOURCES}, got {config.flaky_source!r}")
    started = time.perf_counter()

    def say(msg: str) -> None:
        if progress:
            print(f"[marketing {time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    landing_root, truth_root = Path(landing_root), Path(truth_root)
    people, events = _simulate_world(config)
    names = _names(config, people)
    say(f"simulated {config.people:,} people and {events['kind'].size:,} true events over {config.days} days")

    # Day by day, so memory stays bounded and progress is visible: records -> defects -> lines -> files.
    index = {s: _source_index(config, events, s) for s in SOURCES}
    orders = np.flatnonzero(events["kind"] == K_ORDER)
    files, records, defects = [], [], []
    rows_per_source = dict.fromkeys(SOURCES, 0)
    for d in range(config.days):
        day_lines = 0
        for source in SOURCES:
            idx, bounds = index[source]
            raw = _source_frame(source, config, events, idx[bounds[d] : bounds[d + 1]], names, orders)
            out = _render(source, raw, config, d)
            status = [
                _write_new(landing_root / name, _file_bytes(header, out.lines.slice(first, rows)))
                for name, header, first, rows in out.files.select("file", "header", "_first", "rows").iter_rows()
            ]
            files.append(out.files.with_columns(source=pl.lit(source), status=pl.Series(status, dtype=pl.String)))
            records.append(out.records)
            defects.append(out.defects)
            rows_per_source[source] += out.lines.len()
            day_lines += out.lines.len()
        say(f"day {config.start + dt.timedelta(days=d)} ({d + 1}/{config.days}): {day_lines:,} lines")

    per_file = pl.concat(files).select(
        "source", "day", "file", "rows", "defective_rows", "late", "extra_column", "arrives_at", "status"
    )
    all_defects = pl.concat(defects)
    truth = truth_root / "marketing"
    _write_parquet(_truth_events(events), truth / "events.parquet")
    _write_parquet(pl.concat(records, rechunk=False), truth / "records.parquet")
    _write_parquet(all_defects, truth / "defects.parquet")
    _write_parquet(_identities(people, names, events), truth / "identities.parquet")
    _write_parquet(_people_frame(people), truth / "people.parquet")
    _write_parquet(per_file, truth / "files.parquet")
    (truth / "config.json").write_text(_config_json(config))

    summary = GenerationSummary(
        rows_per_source=rows_per_source,
        files_written=int((per_file["status"] == "written").sum()),
        files_skipped=int((per_file["status"] != "written").sum()),
        files_conflicting=int((per_file["status"] == "conflict").sum()),
        touchpoints=int((events["kind"] < K_SIGNUP).sum()),
        people=config.people,
        customers=int((people.signup != NEVER).sum()),
        conversions=int((events["kind"] == K_ORDER).sum()),
        defect_labels=all_defects.height,
        seconds=round(time.perf_counter() - started, 2),
        per_file=per_file,
    )
    say(
        f"done: {summary.touchpoints:,} touchpoints; {summary.files_written} files written, "
        f"{summary.files_skipped} already there ({summary.files_conflicting} differ); truth in {truth}"
    )
    return summary


def _truth_events(ev: dict[str, np.ndarray]) -> pl.DataFrame:
    kind = ev["kind"]
    is_order = kind == K_ORDER
    fx = np.array([FX_TO_USD[c] for c in CURRENCIES])
    value = np.round(ev["amount_cents"] * fx[np.maximum(ev["currency"], 0)] / 100, 2)
    return pl.DataFrame(
        {
            "event_id": ev["event_id"],
            "person_id": ev["person"].astype(np.int64),
            "channel": pl.Series([k.channel for k in KINDS]).gather(kind),
            "action": pl.Series([k.action for k in KINDS]).gather(kind),
            "campaign": _take(pl.Series([c for c, _ in CAMPAIGNS]), ev["campaign"]),
            "ts": pl.Series(ev["ts"] * 1_000_000).cast(pl.Datetime("us", "UTC")),
            "is_conversion": is_order,
            "conversion_value": pl.Series(value).set(pl.Series(~is_order), None),
            "cause_event_id": pl.Series(ev["cause_event_id"]).set(pl.Series(ev["cause_event_id"] < 0), None),
        }
    )


def _identities(people: _People, names: _Names, ev: dict[str, np.ndarray]) -> pl.DataFrame:
    """Every identifier of every person; `seen` = it occurs in some landing record (defective or not)."""
    cookie_seen = np.zeros(people.cookie_owner.size, bool)
    cookie_seen[ev["cookie"][ev["cookie"] >= 0]] = True  # every event with a cookie reaches ads, social or web
    customer = people.signup != NEVER  # every customer has a crm customer row
    has_email = customer | (people.email_from != NEVER)
    email_seen = customer.copy()
    email_seen[ev["person"][(ev["kind"] >= K_SEND) & (ev["kind"] <= K_EMAIL_CLICK)]] = True
    handle_seen = np.zeros(people.n, bool)
    handle_seen[ev["person"][ev["handle"]]] = True
    person = np.arange(people.n, dtype=np.int64)
    parts = [("cookie_id", names.cookie, people.cookie_owner.astype(np.int64), cookie_seen)]
    for kind, ident, has, seen in (
        ("customer_id", names.customer, customer, customer),
        ("email_hash", names.email_hash, has_email, email_seen),
        ("social_handle", names.handle, people.has_handle, handle_seen),
    ):
        parts.append((kind, ident.filter(pl.Series(has)), person[has], seen[has]))
    return pl.concat(
        [
            pl.DataFrame(
                {
                    "identifier_type": pl.Series([k] * len(i), dtype=pl.String),
                    "identifier": i,
                    "person_id": p,
                    "seen": s,
                }
            )
            for k, i, p, s in parts
        ]
    )


def _people_frame(people: _People) -> pl.DataFrame:
    since = np.where(people.signup != NEVER, people.signup, -1)
    return pl.DataFrame(
        {
            "person_id": np.arange(people.n),
            "customer_since": pl.Series(since * 1_000_000).cast(pl.Datetime("us", "UTC")),
            "has_email": (people.signup != NEVER) | (people.email_from != NEVER),
            "has_social_handle": people.has_handle,
            "cookies": people.n_cookies.astype(np.int64),
            "currency": pl.Series(CURRENCIES).gather(people.currency),
        }
    ).with_columns(pl.when(pl.col("customer_since").dt.epoch("s") >= -0).then(pl.col("customer_since")))


def _parse_days(text: str) -> tuple[int, ...]:
    """'10-14' or '3,5,10-12' -> day offsets."""
    days: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        days.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(sorted(set(days)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Land seeded synthetic marketing data with ground truth.")
    parser.add_argument("--home", type=Path, default=None, help="writes HOME/landing and HOME/truth")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--flaky-source", default="social")
    parser.add_argument("--flaky-days", default="", help="day offsets, e.g. 10-14 or 3,5,8-9")
    parser.add_argument("--flaky-defect-rate", type=float, default=0.3)
    parser.add_argument("--touchpoints-per-person-per-day", type=float, default=DEFAULT_TOUCHES_PER_PERSON_DAY)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    env = settings()
    home: Path = args.home.expanduser().resolve() if args.home else env.home
    config = GeneratorConfig(
        start=args.start or env.start_date,
        days=args.days,
        people=args.people,
        seed=args.seed,
        flaky_source=args.flaky_source or None,
        flaky_days=_parse_days(args.flaky_days),
        flaky_defect_rate=args.flaky_defect_rate,
        touchpoints_per_person_per_day=args.touchpoints_per_person_per_day,
    )
    summary = generate_marketing(config, home / "landing", home / "truth", progress=args.progress)
    print(
        f"{summary.touchpoints:,} touchpoints, {summary.conversions:,} conversions, {summary.people:,} people; "
        f"{summary.files_written} files written, {summary.files_skipped} already present "
        f"({summary.files_conflicting} with different content, left untouched); {summary.seconds:.1f}s"
    )
    for source, rows in summary.rows_per_source.items():
        print(f"  {source:<7}{rows:>12,} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
