"""The seeded marketing generator, checked on the real files it lands and the truth it writes."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from intelligence.synthetic import marketing as mk
from intelligence.synthetic.marketing import DefectRates, GenerationSummary, GeneratorConfig, generate_marketing

START = dt.date(2024, 3, 4)
DAYS = 6
# Defect rates well above the defaults so a small world still shows every kind.
RATES = DefectRates(
    duplicate=0.03, null=0.03, malformed=0.03, mixed_timezones=0.25, late_file=0.3, extra_column=0.3, out_of_range=0.02
)
CONFIG = GeneratorConfig(start=START, days=DAYS, people=1500, seed=5, defects=RATES, flaky_days=(2, 3))
NAME = re.compile(
    r"(?P<source>[a-z]+)/(?P<day>\d{4}-\d{2}-\d{2})/(?P=source)_(?P=day)_(?P<tag>\d\d|late\d\d)\.(?P<ext>\w+)"
)


@dataclasses.dataclass
class World:
    landing: Path
    truth: Path
    summary: GenerationSummary

    def frame(self, name: str) -> pl.DataFrame:
        return pl.read_parquet(self.truth / "marketing" / f"{name}.parquet")


def make(root: Path, config: GeneratorConfig = CONFIG) -> World:
    summary = generate_marketing(config, root / "landing", root / "truth")
    return World(root / "landing", root / "truth", summary)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make(tmp_path_factory.mktemp("world"))


def landing_files(landing: Path) -> dict[str, bytes]:
    return {p.relative_to(landing).as_posix(): p.read_bytes() for p in sorted(landing.rglob("*")) if p.is_file()}


def physical_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1]


def parse_ts(text: str | None) -> int | None:
    """Reference reader for the five documented formats; None for anything else."""
    if text is None or text == "":
        return None
    if re.fullmatch(r"\d{13}", text):
        return int(text) // 1000
    if re.fullmatch(r"\d{9,10}", text):
        return int(text)
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)?", text):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def ts_format(text: str) -> str:
    if re.fullmatch(r"\d{13}", text):
        return "epoch_ms"
    if re.fullmatch(r"\d{9,10}", text):
        return "epoch_s"
    if text.endswith("Z"):
        return "canonical"
    return "offset" if re.search(r"[+-]\d\d:\d\d$", text) else "naive"


def parse_number(text: str) -> float | None:
    try:
        return float(text) if re.fullmatch(r"-?\d+(\.\d+)?", text) else None
    except ValueError:
        return None


@dataclasses.dataclass
class Line:
    file: str
    line: int
    text: str
    fields: dict[str, str | None] | None  # None when the line cannot be read as a record
    width: int  # fields on the line (CSV), or keys (JSON)
    expected_width: int


def read_lines(world: World) -> dict[tuple[str, int], Line]:
    """Every physical data line of every landing file, parsed the way a tolerant reader would."""
    out: dict[tuple[str, int], Line] = {}
    for path in sorted(world.landing.rglob("*.*")):
        name = path.relative_to(world.landing).as_posix()
        raw = physical_lines(path)
        if name.endswith(".csv"):
            header = next(csv.reader([raw[0]]))
            for number, text in enumerate(raw[1:], start=2):
                values = next(csv.reader([text]))
                fields = dict(zip(header, values, strict=False)) if len(values) == len(header) else None
                clean = {k: (v if v != "" else None) for k, v in fields.items()} if fields else None
                out[name, number] = Line(name, number, text, clean, len(values), len(header))
        else:
            for number, text in enumerate(raw, start=1):
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError:
                    out[name, number] = Line(name, number, text, None, 0, 0)
                    continue
                out[name, number] = Line(name, number, text, obj, len(obj), len(obj))
    return out


@pytest.fixture(scope="module")
def lines(world: World) -> dict[tuple[str, int], Line]:
    return read_lines(world)


# ---------------------------------------------------------------- determinism and landing rules


def test_same_seed_same_bytes_and_other_seed_differs(world: World, tmp_path: Path) -> None:
    again = make(tmp_path / "again")
    first, second = landing_files(world.landing), landing_files(again.landing)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    for name in ("events", "records", "defects", "identities", "files"):
        assert world.frame(name).equals(again.frame(name)), name

    other = make(tmp_path / "other", dataclasses.replace(CONFIG, seed=6))
    third = landing_files(other.landing)
    shared = first.keys() & third.keys()
    assert len(shared) >= DAYS * sum(mk.BATCHES_PER_DAY.values())
    assert sum(first[k] != third[k] for k in shared) > 0.9 * len(shared)


def test_rerun_never_modifies_landing_files(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, people=200, days=3)
    world = make(tmp_path, config)
    assert world.summary.files_written == world.summary.per_file.height > 0
    tampered = world.landing / "ads" / START.isoformat() / f"ads_{START.isoformat()}_01.csv"
    tampered.write_bytes(b"someone else's bytes\n")
    removed = world.landing / "web" / START.isoformat() / f"web_{START.isoformat()}_02.csv"
    removed_bytes = removed.read_bytes()
    removed.unlink()
    before = landing_files(world.landing)
    mtimes = {p: p.stat().st_mtime_ns for p in world.landing.rglob("*.*")}

    rerun = generate_marketing(config, world.landing, world.truth)

    assert rerun.files_written == 1
    assert rerun.files_skipped == world.summary.per_file.height - 1
    assert rerun.files_conflicting == 1
    status = dict(zip(rerun.per_file["file"], rerun.per_file["status"], strict=True))
    assert status[tampered.relative_to(world.landing).as_posix()] == "conflict"
    assert status[removed.relative_to(world.landing).as_posix()] == "written"
    assert tampered.read_bytes() == b"someone else's bytes\n"
    assert removed.read_bytes() == removed_bytes
    after = landing_files(world.landing)
    assert {k: v for k, v in after.items() if k in before} == before
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    assert not [p for p in world.landing.rglob(".*") if p.is_file()], "temp files left behind"


def test_layout_names_and_headers(world: World) -> None:
    per_file = world.summary.per_file
    found = {p.relative_to(world.landing).as_posix() for p in world.landing.rglob("*") if p.is_file()}
    assert found == set(per_file["file"])
    for name in found:
        m = NAME.fullmatch(name)
        assert m, name
        assert m["ext"] == mk.EXTENSION[m["source"]]
    for source in mk.SOURCES:
        for offset in range(DAYS):
            day = (START + dt.timedelta(days=offset)).isoformat()
            for batch in range(1, mk.BATCHES_PER_DAY[source] + 1):
                assert f"{source}/{day}/{source}_{day}_{batch:02d}.{mk.EXTENSION[source]}" in found
    extra = dict(zip(per_file["file"], per_file["extra_column"], strict=True))
    for name in found:
        path = world.landing / name
        if name.endswith(".csv"):
            header = physical_lines(path)[0].split(",")
            expected = list(mk.COLUMNS[name.split("/")[0]]) + ([extra[name]] if extra[name] else [])
            assert header == expected, name
        else:
            for text in physical_lines(path):
                try:
                    keys = list(json.loads(text))
                except json.JSONDecodeError:
                    continue
                assert keys == list(mk.COLUMNS["social"]) + ([extra[name]] if extra[name] else []), name
    assert mk.COLUMNS["ads"] == ("click_id", "cookie_id", "campaign", "channel", "cost", "ts")
    assert per_file["late"].any() and per_file["extra_column"].is_not_null().any()


# ---------------------------------------------------------------- defect labels against the files


def test_every_labelled_defect_is_really_in_the_file(world: World, lines: dict[tuple[str, int], Line]) -> None:
    defects = world.frame("defects")
    assert set(defects["defect"]) == {
        "duplicate",
        "null",
        "malformed",
        "out_of_range",
        "flaky",
        "late_file",
        "extra_column_file",
    }
    events = world.frame("events").select("event_id", pl.col("ts").dt.epoch("s").alias("true_ts"))
    records = world.frame("records").join(events, on="event_id")
    true_ts = dict(zip(zip(records["file"], records["line"], strict=True), records["true_ts"], strict=True))
    for row in defects.iter_rows(named=True):
        if row["line"] is None:
            assert row["defect"] in ("late_file", "extra_column_file")
            if row["defect"] == "late_file":
                assert "_late" in row["file"]
            else:
                assert physical_lines(world.landing / row["file"])[0].split(",")[-1] == row["detail"] or row[
                    "file"
                ].endswith(".jsonl")
            continue
        line = lines[row["file"], row["line"]]
        kind, detail = row["kind"], row["detail"]
        offset = (dt.date.fromisoformat(row["file"].split("/")[1]) - START).days
        if row["defect"] == "flaky":  # normal-rate defects still happen on flaky days, too
            assert row["file"].startswith("social/") and offset in CONFIG.flaky_days, row
        if kind == "duplicate":
            assert row["duplicate_of_line"] < row["line"]
            assert lines[row["file"], row["duplicate_of_line"]].text == line.text
        elif kind == "null":
            assert line.fields is not None and line.fields[detail] is None, row
        elif kind == "malformed" and detail == "ragged_short":
            assert line.width == line.expected_width - 1, row
        elif kind == "malformed" and detail == "ragged_long":
            assert line.width == line.expected_width + 1, row
        elif kind == "malformed" and detail == "truncated_json":
            assert line.fields is None, row
        elif kind == "malformed" and detail == "bad_ts":
            assert line.fields is not None and line.fields["ts"] and parse_ts(line.fields["ts"]) is None, row
        elif kind == "malformed":
            assert detail == "bad_number", row
            numeric = next(c for c in ("cost", "amount", "goal_completions") if line.fields and c in line.fields)
            assert line.fields is not None and parse_number(str(line.fields[numeric])) is None, row
        elif detail == "future_ts":
            assert line.fields is not None
            shown = parse_ts(line.fields["ts"])
            assert shown is not None
            lag = shown - mk.FUTURE_SHIFT_DAYS * 86_400 - true_ts[row["file"], row["line"]]
            assert 0 <= lag <= (601 if row["source"] == "web" else 0), row
        else:
            assert kind == "out_of_range" and detail.startswith("negative_"), row
            assert line.fields is not None
            value = parse_number(str(line.fields[detail.removeprefix("negative_")]))
            assert value is not None and value < 0, row


def test_unlabelled_lines_are_clean(world: World, lines: dict[tuple[str, int], Line]) -> None:
    """The labels are complete: a line without a label reads as a valid record."""
    labelled = {
        (f, n)
        for f, n in world.frame("defects").filter(pl.col("line").is_not_null()).select("file", "line").iter_rows()
    }
    required = {s: {c for cls in spec.required for c in cls} for s, spec in mk.SPECS.items()}
    checked = 0
    for key, line in lines.items():
        if key in labelled:
            continue
        source = line.file.split("/")[0]
        assert line.fields is not None and line.width == line.expected_width, line
        f = line.fields
        for column in required[source] - {"email_hash", "signup_ts", "order_id", "amount", "currency"}:
            assert f[column] is not None, (line, column)
        assert parse_ts(f["ts"]) is not None, line
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
        assert parse_ts(f["ts"]) < now, line  # type: ignore[operator]
        if source == "ads":
            assert f["channel"] in mk.AD_CHANNELS and parse_number(str(f["cost"])) >= 0  # type: ignore[operator]
        if source == "social":
            assert f["platform"] in mk.PLATFORMS and f["event_type"] in ("impression", "engagement", "click")
            assert f["cookie_id"] or f["social_handle"]
            assert f["event_type"] != "click" or f["cookie_id"]
        if source == "crm" and f["record_type"] == "order":
            assert parse_number(str(f["amount"])) > 0 and f["currency"] in mk.CURRENCIES  # type: ignore[operator]
            assert f["email_hash"] is None and f["signup_ts"] is None and f["order_id"]
        if source == "crm" and f["record_type"] == "customer":
            assert re.fullmatch(r"[0-9a-f]{64}", str(f["email_hash"])) and parse_ts(f["signup_ts"]) is not None
            assert f["order_id"] is None and f["amount"] is None
        if source == "web":
            assert int(str(f["goal_completions"])) >= 0
        checked += 1
    assert checked > 0.8 * len(lines)


# ---------------------------------------------------------------- ground truth


def test_timestamps_in_every_format_denote_the_true_instant(world: World, lines: dict[tuple[str, int], Line]) -> None:
    events = world.frame("events").select("event_id", pl.col("ts").dt.epoch("s").alias("true_ts"))
    records = world.frame("records").filter(pl.col("defect").is_null()).join(events, on="event_id")
    formats: Counter[str] = Counter()
    for file, number, true_ts in records.select("file", "line", "true_ts").iter_rows():
        shown = str((lines[file, number].fields or {})["ts"])
        formats[ts_format(shown)] += 1
        lag = (parse_ts(shown) or 0) - true_ts
        if file.startswith("web/"):
            assert 0 <= lag <= 601, (file, number, shown)  # a click's session opens seconds later
        else:
            assert lag == 0, (file, number, shown)
    assert set(formats) == {"canonical", "offset", "naive", "epoch_s", "epoch_ms"}
    share = 1 - formats["canonical"] / sum(formats.values())
    assert abs(share - RATES.mixed_timezones) < 0.05


def test_records_map_to_events_and_sources_agree(world: World, lines: dict[tuple[str, int], Line]) -> None:
    records = world.frame("records")
    events = world.frame("events")
    identities = world.frame("identities")
    assert records.select("source", "record_id").is_unique().all()
    assert events["event_id"].is_unique().all()
    assert records.join(events, on="event_id", how="anti").height == 0
    clean = records.filter(pl.col("defect").is_null())
    id_column = {"ads": "click_id", "social": "event_id", "web": "session_id", "email": "message_id"}
    for source, record_id, file, number in clean.select("source", "record_id", "file", "line").iter_rows():
        fields = lines[file, number].fields
        assert fields is not None
        if source == "crm":
            shown = fields["order_id"] or fields["customer_id"]
        elif source == "email":
            shown = f"{fields['message_id']}:{fields['event_type']}"
        else:
            shown = fields[id_column[source]]
        assert shown == record_id, (file, number)

    # An ad click and the web session it opened are one event, and carry the same click_id.
    clicks = clean.filter(pl.col("source") == "ads")
    sessions = records.filter(pl.col("source") == "web").select("event_id", pl.col("record_id").alias("session"))
    assert clicks.join(sessions, on="event_id", how="anti").height == 0
    position = mk.COLUMNS["web"].index("click_id")  # defects never move or blank it, even on ragged lines
    web_click_ids = {next(csv.reader([w.text]))[position] for w in lines.values() if w.file.startswith("web/")}
    assert set(clicks["record_id"]) <= web_click_ids

    # Identifiers in clean records belong to the person of the event they report.
    owner = {(t, i): p for t, i, p in identities.select("identifier_type", "identifier", "person_id").iter_rows()}
    person = dict(zip(events["event_id"], events["person_id"], strict=True))
    checked = 0
    for source, event_id, file, number in clean.select("source", "event_id", "file", "line").iter_rows():
        fields = lines[file, number].fields or {}
        for column in ("cookie_id", "customer_id", "email_hash", "social_handle"):
            if fields.get(column):
                assert owner[column, fields[column]] == person[event_id], (source, file, number, column)
                checked += 1
    assert checked > clean.height
    seen = identities.group_by("identifier_type").agg(pl.col("seen").mean())
    assert seen.filter(pl.col("identifier_type") == "cookie_id")["seen"].item() < 1.0  # linkage is partial


def test_orders_have_a_logged_in_session_and_true_values(world: World, lines: dict[tuple[str, int], Line]) -> None:
    events = world.frame("events")
    records = world.frame("records").filter(pl.col("defect").is_null())
    orders = events.filter(pl.col("is_conversion"))
    assert orders.height > 20
    assert events.filter(~pl.col("is_conversion"))["conversion_value"].null_count() == events.height - orders.height
    fx_ok = 0
    for event_id, value, file, number in (
        orders.join(records, on="event_id").select("event_id", "conversion_value", "file", "line").iter_rows()
    ):
        f = lines[file, number].fields or {}
        assert value == round(float(str(f["amount"])) * mk.FX_TO_USD[str(f["currency"])], 2), event_id
        fx_ok += 1
    assert fx_ok > 0.8 * orders.height
    # Every order is preceded by a logged-in web session of the same customer (same or return visit).
    logged_in: dict[str, list[int]] = {}
    placed: list[tuple[str, int]] = []
    for file, number in records.filter(pl.col("source").is_in(["web", "crm"])).select("file", "line").iter_rows():
        f = lines[file, number].fields or {}
        if file.startswith("web/") and f.get("customer_id"):
            logged_in.setdefault(str(f["customer_id"]), []).append(parse_ts(f["ts"]))  # type: ignore[arg-type]
        elif f.get("record_type") == "order":
            placed.append((str(f["customer_id"]), parse_ts(f["ts"])))  # type: ignore[arg-type]
    assert len(placed) > 0.8 * orders.height
    preceded = sum(any(60 <= ts - s <= 2400 for s in logged_in.get(c, [])) for c, ts in placed)
    assert preceded > 0.85 * len(placed)  # the rest lost their session line to a defect
    logged_sessions = sum(map(len, logged_in.values()))
    assert logged_sessions > 2 * len(placed)  # customers also log in when they do not buy


def test_channels_have_different_true_effects(tmp_path: Path) -> None:
    config = GeneratorConfig(start=START, days=20, people=4000, seed=3, defects=DefectRates(), flaky_source=None)
    world = make(tmp_path, config)
    events = world.frame("events")
    touches = events.filter(pl.col("action").is_in(["click", "session"])).group_by("channel").len("touches")
    caused = (
        events.filter(pl.col("cause_event_id").is_not_null())
        .join(
            events.select(pl.col("event_id").alias("cause_event_id"), pl.col("channel").alias("by")),
            on="cause_event_id",
        )
        .group_by("by")
        .len("conversions")
    )
    rate = dict(
        touches.join(caused, left_on="channel", right_on="by")
        .select("channel", pl.col("conversions") / pl.col("touches"))
        .iter_rows()
    )
    assert rate["paid_search"] > 3 * rate["display"]
    assert world.summary.touchpoints == pytest.approx(config.people * config.days * 0.35, rel=0.1)
    assert events.filter(pl.col("is_conversion") & pl.col("cause_event_id").is_null()).height > 0  # baseline


# ---------------------------------------------------------------- rates and flaky mode


def test_defect_rates_roughly_as_configured(world: World) -> None:
    defects = world.frame("defects")
    per_file = world.summary.per_file
    normal = per_file.filter(
        ~(
            (pl.col("source") == "social")
            & pl.col("day").is_in([START + dt.timedelta(days=2), START + dt.timedelta(days=3)])
        )
    )
    rows = normal["rows"].sum()
    counts = dict(
        defects.filter(pl.col("line").is_not_null() & pl.col("file").is_in(normal["file"].implode()))
        .group_by("defect")
        .len()
        .iter_rows()
    )
    configured = {"duplicate": RATES.duplicate, "null": RATES.null, "malformed": RATES.malformed}
    for kind, rate in {**configured, "out_of_range": RATES.out_of_range}.items():
        assert counts[kind] / rows == pytest.approx(rate, rel=0.35), kind
    files = per_file.height
    assert per_file["extra_column"].is_not_null().sum() / files == pytest.approx(RATES.extra_column, abs=0.12)


def test_flaky_days_hit_only_the_flaky_source(world: World) -> None:
    per_file = world.summary.per_file.with_columns(
        flaky_day=pl.col("day").is_in([START + dt.timedelta(days=d) for d in CONFIG.flaky_days])
    )
    rate = (
        per_file.group_by("source", "flaky_day")
        .agg((pl.col("defective_rows").sum() / pl.col("rows").sum()).alias("rate"))
        .sort("source", "flaky_day")
    )
    got = {(s, f): r for s, f, r in rate.iter_rows()}
    assert got["social", True] > 0.25
    assert got["social", False] < 0.12
    for source in ("ads", "crm", "web", "email"):
        assert got[source, True] < 0.15, source
    assert world.frame("defects").filter(pl.col("defect") == "flaky")["file"].str.starts_with("social/").all()


# ---------------------------------------------------------------- summary and CLI


def test_summary_counts_match_the_files(world: World, lines: dict[tuple[str, int], Line]) -> None:
    summary = world.summary
    per_source = Counter(key[0].split("/")[0] for key in lines)
    assert summary.rows_per_source == {s: per_source[s] for s in mk.SOURCES}
    assert dict(zip(summary.per_file["file"], summary.per_file["rows"], strict=True)) == {
        f: len(physical_lines(world.landing / f)) - (1 if f.endswith(".csv") else 0) for f in summary.per_file["file"]
    }
    events = world.frame("events")
    assert summary.conversions == events["is_conversion"].sum()
    assert summary.touchpoints == events.filter(~pl.col("action").is_in(["signup", "order"])).height
    config = json.loads((world.truth / "marketing" / "config.json").read_text())
    assert config["config"]["seed"] == CONFIG.seed and config["model"]["fx_to_usd"] == mk.FX_TO_USD


def test_cli_lands_into_home(tmp_path: Path) -> None:
    args = "--start 2024-01-01 --days 2 --people 100 --seed 9 --flaky-days 0-1"
    code = mk.main(["--home", str(tmp_path), *args.split()])
    assert code == 0
    assert (tmp_path / "landing" / "ads" / "2024-01-01" / "ads_2024-01-01_01.csv").is_file()
    config = json.loads((tmp_path / "truth" / "marketing" / "config.json").read_text())["config"]
    assert config["flaky_days"] == [0, 1] and config["people"] == 100
    assert mk._parse_days("3,5,8-10") == (3, 5, 8, 9, 10)


def test_tiny_world_with_empty_days(tmp_path: Path) -> None:
    world = make(tmp_path, GeneratorConfig(start=START, days=3, people=3, seed=1))
    per_file = world.summary.per_file
    assert per_file.filter(~pl.col("late")).height == 3 * sum(mk.BATCHES_PER_DAY.values())
    empty = per_file.filter(pl.col("rows") == 0)
    assert empty.height > 0
    for name, extra in empty.select("file", "extra_column").iter_rows():
        source = name.split("/")[0]
        header = ",".join([*mk.COLUMNS[source], *([extra] if extra else [])]) + "\n"
        assert (world.landing / name).read_text() == (header if name.endswith(".csv") else "")


def test_zero_rates_give_clean_canonical_files(tmp_path: Path) -> None:
    none = DefectRates(0, 0, 0, 0, 0, 0, 0)
    world = make(tmp_path, GeneratorConfig(start=START, days=2, people=300, seed=2, defects=none, flaky_source=None))
    assert world.frame("defects").height == 0
    assert world.frame("records")["defect"].null_count() == world.frame("records").height
    parsed = read_lines(world)
    assert parsed and all(p.fields and ts_format(str(p.fields["ts"])) == "canonical" for p in parsed.values())
