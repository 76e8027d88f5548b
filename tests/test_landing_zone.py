"""The landing parser and the LandingZone resource, on real bytes and real files in tmp_path."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from resources.landing_zone import (
    LINE,
    PARSE_ERROR,
    PARSE_OK,
    PARSE_REASON,
    PARSE_STATUS,
    RAW,
    SOURCE_FILE,
    FileReport,
    LandingPathError,
    LandingZone,
    parse_bytes,
    polars_schema,
)

COLUMNS = {"name": "str", "n": "int", "x": "float", "flag": "bool"}
TS_COLUMNS = {"id": "str", "ts": "datetime"}
UTC = dt.UTC
# What polars' strip_chars() strips (Rust's char::is_whitespace); the CSV path decides blankness with it.
RUST_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
RUST_WHITESPACE += "\u2028\u2029\u202f\u205f\u3000"
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(FAST, max_examples=100)


def parse(data: bytes, columns: dict[str, str] = COLUMNS, jsonl: bool = False) -> tuple[pl.DataFrame, FileReport]:
    return parse_bytes(data, ".jsonl" if jsonl else ".csv", columns, "src/2024-01-01/f")  # type: ignore[arg-type]


def physical_lines(data: bytes) -> list[bytes]:
    """The file's lines as the platform numbers them: split at LF, one trailing CR dropped."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def decodes(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def assert_well_formed(frame: pl.DataFrame, columns: dict[str, str]) -> None:
    """Invariants of every parsed frame, whatever the input."""
    assert frame.schema == polars_schema(columns)  # type: ignore[arg-type]
    assert set(frame[PARSE_STATUS].unique().to_list()) <= {PARSE_OK, PARSE_ERROR}
    ok, errors = frame.filter(pl.col(PARSE_STATUS) == PARSE_OK), frame.filter(pl.col(PARSE_STATUS) == PARSE_ERROR)
    assert ok.height + errors.height == frame.height
    assert ok[PARSE_REASON].null_count() == ok.height and ok[RAW].null_count() == ok.height
    assert errors[PARSE_REASON].null_count() == 0 and errors[RAW].null_count() == 0
    assert frame[LINE].null_count() == 0 and frame[LINE].is_unique().all() and frame[LINE].is_sorted()


# -- arbitrary bytes --------------------------------------------------------------------------

PIECES = [b"a", b"b", b"name", b"n", b",", b'"', b"\n", b"\r\n", b"\r", b" ", b"1", b"\xff", b"\xc3", b"\xc3\xa9",
          b"\xef\xbb\xbf", b"{", b"}", b'{"name": 1}', b"[", b":", b"\x00", b"\x1f", b"\x1c", b"\xe2\x80\xa8",
          b"name,n,x,flag\n", b"\t"]  # fmt: skip
NASTY_BYTES = st.one_of(st.binary(max_size=120), st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join))


@MANY
@given(NASTY_BYTES)
def test_arbitrary_bytes_never_raise_csv(data: bytes) -> None:
    frame, report = parse(data)
    assert_well_formed(frame, COLUMNS)
    assert report.rows == frame.height
    assert report.parse_errors == (frame[PARSE_STATUS] == PARSE_ERROR).sum()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b'"' in data or b"\r" in data.replace(b"\r\n", b""):
        return  # UTF-16, quoted records and CR line ends have their own tests
    # Every non-blank line after the header is one row; lines that do not decode are rows too.
    lines = physical_lines(data)
    bad = [i for i, line in enumerate(lines, 1) if not decodes(line)]
    good = [i for i, line in enumerate(lines, 1) if decodes(line) and line.decode().strip(RUST_WHITESPACE)]
    assert frame[LINE].to_list() == sorted(bad + good[1:])


@MANY
@given(NASTY_BYTES)
def test_arbitrary_bytes_never_raise_jsonl(data: bytes) -> None:
    frame, report = parse(data, jsonl=True)
    assert_well_formed(frame, COLUMNS)
    assert report.rows == frame.height
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\r" in data.replace(b"\r\n", b""):
        return
    lines = physical_lines(data)
    expected = [i for i, line in enumerate(lines, 1) if not decodes(line) or line.decode().strip()]
    assert frame[LINE].to_list() == expected


# -- well-formed CSV --------------------------------------------------------------------------

TEXT = st.text(alphabet=st.sampled_from(list("abcXYZ019 ,\"';-_.éüß日本€😀\t")), max_size=10)
BOOLS = {"true": True, "True": True, "YES": True, "y": True, "1": True, "t": True,
         "false": False, "F": False, "no": False, "N": False, "0": False}  # fmt: skip


@st.composite
def records(draw: st.DrawFn) -> dict[str, object]:
    return {
        "name": draw(TEXT),
        "n": draw(st.integers(-(2**63), 2**63 - 1)),
        "x": draw(st.floats(allow_nan=False, allow_infinity=False)),
        "flag": draw(st.sampled_from(sorted(BOOLS))),
    }


@st.composite
def csv_files(draw: st.DrawFn, ragged: bool = False) -> tuple[bytes, list[tuple[int, object]]]:
    """A CSV file and, per record, (physical line, record dict or the ragged raw line)."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.booleans())
    header = draw(st.sampled_from(["name,n,x,flag", "Name, N ,X,FLAG", '"name","n","x","flag"', "flag,x,n,name"]))
    order = [h.strip().strip('"').strip().lower() for h in header.split(",")]
    out = io.StringIO()
    out.write(header + newline)
    line = 1
    expected: list[tuple[int, object]] = []
    for _ in range(draw(st.integers(0, 12))):
        for _ in range(draw(st.integers(0, 1)) if draw(st.integers(0, 3)) == 0 else 0):
            out.write(newline)  # a blank line: skipped, but it still counts for line numbers
            line += 1
        line += 1
        if ragged and draw(st.booleans()):
            width = draw(st.integers(1, 7).filter(lambda w: w != 4))
            fields = [draw(TEXT) or "v" for _ in range(width)]
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(fields)
            out.write(buffer.getvalue() + newline)
            expected.append((line, buffer.getvalue()))
        else:
            record = draw(records())
            buffer = io.StringIO()
            values = [record[c] if c != "x" else repr(record[c]) for c in order]
            csv.writer(buffer, lineterminator="").writerow(values)
            out.write(buffer.getvalue() + newline)
            expected.append((line, record))
    data = out.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" + data if bom else data), expected


def expected_name(value: str) -> str | None:
    return value.strip(RUST_WHITESPACE) or None


@FAST
@given(csv_files())
def test_well_formed_csv_parses_every_row_with_values_and_lines(case: tuple[bytes, list[tuple[int, object]]]) -> None:
    data, expected = case
    frame, report = parse(data)
    assert_well_formed(frame, COLUMNS)
    assert frame[PARSE_STATUS].to_list() == [PARSE_OK] * len(expected), frame.filter(pl.col(PARSE_REASON).is_not_null())
    assert frame[LINE].to_list() == [line for line, _ in expected]
    rows = [r for _, r in expected]
    assert frame["name"].to_list() == [expected_name(r["name"]) for r in rows]  # type: ignore[index]
    assert frame["n"].to_list() == [r["n"] for r in rows]  # type: ignore[index]
    assert frame["x"].to_list() == [r["x"] for r in rows]  # type: ignore[index]
    assert frame["flag"].to_list() == [BOOLS[r["flag"]] for r in rows]  # type: ignore[index]
    assert frame[SOURCE_FILE].unique().to_list() in ([], ["src/2024-01-01/f"])
    assert report.parse_errors == 0


@FAST
@given(csv_files(ragged=True))
def test_ragged_rows_are_error_rows_with_counts_and_lines(case: tuple[bytes, list[tuple[int, object]]]) -> None:
    data, expected = case
    frame, _ = parse(data)
    assert_well_formed(frame, COLUMNS)
    assert frame[LINE].to_list() == [line for line, _ in expected]
    for row, (_, record) in zip(frame.iter_rows(named=True), expected, strict=True):
        if isinstance(record, str):
            found = len(next(csv.reader([record])))
            assert row[PARSE_STATUS] == PARSE_ERROR
            assert row[PARSE_REASON] == f"ragged row: expected 4 fields, found {found}"
            assert row[RAW] == record and row["name"] is None
        else:
            assert row[PARSE_STATUS] == PARSE_OK and row["n"] == record["n"]  # type: ignore[index]


@FAST
@given(csv_files(ragged=True))
def test_slow_path_agrees_with_fast_path(case: tuple[bytes, list[tuple[int, object]]]) -> None:
    """A quoted line break anywhere sends the file through Python's csv module: same rows, same answers."""
    data, expected = case
    fast, _ = parse(data)
    last = expected[-1][0] if expected else 1
    slow, _ = parse(data + b'"an open quote,1,2,true\n')
    assert_frame_equal(slow.filter(pl.col(LINE) <= last), fast)
    tail = slow.filter(pl.col(LINE) > last)
    assert tail[LINE].to_list() == [last + 1] and tail[PARSE_STATUS].to_list() == [PARSE_ERROR]
    assert tail[PARSE_REASON].str.contains("malformed CSV").all()
    assert tail[RAW].to_list() == ['"an open quote,1,2,true']  # the record as written, for the quarantine


def test_quoted_multiline_values_keep_their_line_breaks_and_numbering() -> None:
    data = b'name,n,x,flag\r\nplain,1,1.5,true\r\n"two\r\nlines, ""quoted""",2,2.5,false\r\n\r\nafter,3,3.5,yes\r\n'
    frame, _ = parse(data)
    assert_well_formed(frame, COLUMNS)
    assert frame.select("name", "n", LINE, PARSE_STATUS).rows() == [
        ("plain", 1, 2, PARSE_OK),
        ('two\r\nlines, "quoted"', 2, 3, PARSE_OK),
        ("after", 3, 6, PARSE_OK),
    ]


# -- file-level cases -------------------------------------------------------------------------


def test_bad_utf8_lines_are_rejected_rows_and_the_rest_parse() -> None:
    data = b"name,n,x,flag\ncaf\xc3\xa9,1,1.0,true\ncaf\xe9,2,2.0,true\nok,3,3.0,false\n"
    frame, report = parse(data)
    assert_well_formed(frame, COLUMNS)
    assert frame.select("name", LINE, PARSE_STATUS).rows() == [
        ("café", 2, PARSE_OK),
        (None, 3, PARSE_ERROR),
        ("ok", 4, PARSE_OK),
    ]
    bad = frame.row(1, named=True)
    assert bad[PARSE_REASON] == "invalid UTF-8 (byte 0xe9 at column 4)"
    assert bad[RAW] == "caf\\xe9,2,2.0,true"
    assert "1 line(s) are not valid UTF-8" in report.notes


@pytest.mark.parametrize("jsonl", [False, True])
def test_empty_file(jsonl: bool) -> None:
    for data in (b"", b"\n\n", b"\xef\xbb\xbf"):
        frame, report = parse(data, jsonl=jsonl)
        assert frame.height == 0 and frame.schema == polars_schema(COLUMNS)  # type: ignore[arg-type]
        assert report.notes and report.rows == 0


def test_header_only() -> None:
    frame, report = parse(b"name,n,x,flag\r\n")
    assert frame.height == 0 and frame.schema == polars_schema(COLUMNS)  # type: ignore[arg-type]
    assert report.parse_errors == 0


def test_missing_column_is_null_with_a_note() -> None:
    frame, report = parse(b"name,x,flag\na,1.5,no\n")
    assert frame.select("name", "n", "x", "flag", PARSE_STATUS).rows() == [("a", None, 1.5, False, PARSE_OK)]
    assert "missing column(s): n" in report.notes


def test_extra_column_is_ignored_with_a_note() -> None:
    frame, report = parse(b"name,n,secret,x,flag\na,1,zzz,1.5,no\n")
    assert frame.columns == list(polars_schema(COLUMNS))  # type: ignore[arg-type]
    assert frame.select("name", "n", "x", "flag", PARSE_STATUS).rows() == [("a", 1, 1.5, False, PARSE_OK)]
    assert "extra column(s) ignored: secret" in report.notes


def test_unrecognised_header_rejects_every_row_with_a_reason() -> None:
    frame, report = parse(b"foo,bar\n1,2\n3,4\n\n5,6\n")
    assert frame[LINE].to_list() == [2, 3, 5]
    assert frame[PARSE_STATUS].to_list() == [PARSE_ERROR] * 3
    assert frame[PARSE_REASON].str.starts_with("header does not match the expected columns").all()
    assert frame[PARSE_REASON].str.contains("found foo, bar").all()
    assert frame[RAW].to_list() == ["1,2", "3,4", "5,6"]
    assert report.parse_errors == 3 and any("header does not match" in n for n in report.notes)
    # The same verdict when a quoted line break sends the file down the slow path.
    slow, _ = parse(b'foo,bar\n1,2\n3,4\n\n5,6\n"x\ny",7\n')
    assert slow[LINE].to_list() == [2, 3, 5, 6]
    assert slow[PARSE_REASON].to_list() == frame[PARSE_REASON].to_list() + frame[PARSE_REASON].to_list()[:1]
    assert slow[RAW].to_list() == ["1,2", "3,4", "5,6", '"x\ny",7']


def test_values_that_do_not_parse_are_row_errors_naming_column_and_value() -> None:
    frame, _ = parse(b"name,n,x,flag\na,1.0,x1,maybe\nb,2.5,2,true\nc,,,\n")
    assert frame.select("n", "x", "flag", PARSE_STATUS).rows() == [
        (1, None, None, PARSE_ERROR),
        (None, 2.0, True, PARSE_ERROR),
        (None, None, None, PARSE_OK),  # empty is null, not an error: nullability is the contract's business
    ]
    assert frame[PARSE_REASON].to_list()[:2] == [
        "x: not a number (x1); flag: not a boolean (maybe)",
        "n: not an integer (2.5)",
    ]
    assert frame[RAW].to_list()[:2] == ["a,1.0,x1,maybe", "b,2.5,2,true"]


def test_cr_only_line_endings() -> None:
    """Old Mac / Excel exports end lines with a bare CR; each is still one record."""
    frame, _ = parse(b"name,n,x,flag\ra,1,1.0,true\rb,2,2.0,false\r")
    assert frame.select("name", "n", LINE, PARSE_STATUS).rows() == [("a", 1, 2, PARSE_OK), ("b", 2, 3, PARSE_OK)]
    frame, _ = parse(b'{"name": "a"}\r{"name": "b"}\r', jsonl=True)
    assert frame.select("name", LINE).rows() == [("a", 1), ("b", 2)]


def test_stray_cr_inside_a_line_does_not_crash() -> None:
    """Lines end at LF; a CR elsewhere is content, in the header and in quoted or unquoted fields."""
    frame, report = parse(b'name,n,x,flag,ex\rtra\na\rb,1,1.0,true,z\n"q\rq",2,2.0,fal\rse,z\n')
    assert_well_formed(frame, COLUMNS)
    assert frame.select("name", "n", LINE).rows() == [("a\rb", 1, 2), ("q\rq", 2, 3)]
    assert frame[PARSE_REASON].to_list() == [None, "flag: not a boolean (fal\rse)"]
    assert "extra column(s) ignored: ex tra" in report.notes


def test_utf16_file_with_bom_is_decoded() -> None:
    frame, report = parse("name,n,x,flag\nzoë,1,1.0,true\n".encode("utf-16"))
    assert frame.select("name", "n", PARSE_STATUS).rows() == [("zoë", 1, PARSE_OK)]
    assert any("UTF-16" in note for note in report.notes)


# -- JSONL ------------------------------------------------------------------------------------


def test_jsonl_invalid_and_non_object_lines_are_error_rows() -> None:
    lines = [
        '{"name": "a", "n": 1, "x": 1.5, "flag": true}',
        "{not json",
        "[1, 2]",
        '"a string"',
        "42",
        "null",
        '{"other": 1}',
        "",
        '{"NAME": "b"}',
    ]
    frame, report = parse("\n".join(lines).encode() + b"\n", jsonl=True)
    assert_well_formed(frame, COLUMNS)
    assert frame.select(LINE, PARSE_STATUS, PARSE_REASON).rows() == [
        (1, PARSE_OK, None),
        (2, PARSE_ERROR, "invalid JSON: Expecting property name enclosed in double quotes"),
        (3, PARSE_ERROR, "not a JSON object (found list)"),
        (4, PARSE_ERROR, "not a JSON object (found str)"),
        (5, PARSE_ERROR, "not a JSON object (found int)"),
        (6, PARSE_ERROR, "not a JSON object (found NoneType)"),
        (7, PARSE_ERROR, "record has none of the expected fields"),
        (9, PARSE_OK, None),
    ]
    assert frame[RAW].to_list()[1:3] == ["{not json", "[1, 2]"]
    assert frame["name"].to_list()[-1] == "b"  # keys are matched case-insensitively
    assert "extra field(s) ignored: other" in report.notes


def test_jsonl_numbers_bools_and_nested_values() -> None:
    records = [
        {"name": 12, "n": 3, "x": 2, "flag": False},
        {"name": {"b": [1, 2], "a": None}, "n": 4.0, "x": -1.25e-3, "flag": "yes"},
        {"name": True, "n": True, "x": "NaN?", "flag": 1},
        {"name": None, "n": None, "x": None, "flag": None},
        {"name": "z", "n": [1], "x": 1.0, "flag": 2},
    ]
    frame, _ = parse("\n".join(json.dumps(r) for r in records).encode(), jsonl=True)
    assert frame.select("name", "n", "x", "flag").rows() == [
        ("12", 3, 2.0, False),
        ('{"a": null, "b": [1, 2]}', 4, -1.25e-3, True),
        ("true", None, None, True),
        (None, None, None, None),
        ("z", None, 1.0, None),
    ]
    assert frame[PARSE_STATUS].to_list() == [PARSE_OK, PARSE_OK, PARSE_ERROR, PARSE_OK, PARSE_ERROR]
    assert frame[PARSE_REASON][2] == "n: not an integer (true); x: not a number (NaN?)"
    assert frame[PARSE_REASON][4] == "n: not an integer ([1]); flag: not a boolean (2)"


# -- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T12:34:56Z", dt.datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-01T12:34:56.123456Z", dt.datetime(2024, 3, 1, 12, 34, 56, 123456, tzinfo=UTC)),
        ("2024-03-01T12:34:56+02:00", dt.datetime(2024, 3, 1, 10, 34, 56, tzinfo=UTC)),
        ("2024-03-01 12:34:56-0500", dt.datetime(2024, 3, 1, 17, 34, 56, tzinfo=UTC)),
        ("2024-03-01T12:34:56.5+05:30", dt.datetime(2024, 3, 1, 7, 4, 56, 500000, tzinfo=UTC)),
        ("2024-03-01T12:34:56", dt.datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)),  # naive means UTC
        ("2024-03-01 12:34", dt.datetime(2024, 3, 1, 12, 34, tzinfo=UTC)),
        ("2024-03-01", dt.datetime(2024, 3, 1, tzinfo=UTC)),
        ("1709296496", dt.datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)),  # epoch seconds
        ("1709296496123", dt.datetime(2024, 3, 1, 12, 34, 56, 123000, tzinfo=UTC)),  # epoch milliseconds
        ("1709296496.25", dt.datetime(2024, 3, 1, 12, 34, 56, 250000, tzinfo=UTC)),
        ("0", dt.datetime(1970, 1, 1, tzinfo=UTC)),
        ("  2024-03-01T00:00:00Z  ", dt.datetime(2024, 3, 1, tzinfo=UTC)),
    ],
)
def test_timestamps_parse_to_utc(text: str, expected: dt.datetime) -> None:
    frame, _ = parse(f"id,ts\nr,{text}\n".encode(), TS_COLUMNS)
    assert frame.row(0, named=True)[PARSE_STATUS] == PARSE_OK
    assert frame["ts"].to_list() == [expected]
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")


@pytest.mark.parametrize("text", ["garbage", "2024-13-01", "2024-02-30T00:00:00Z", "1e9", "99999999999999999", "12:00"])
def test_unparseable_timestamps_are_errors_with_a_reason(text: str) -> None:
    frame, _ = parse(f"id,ts\nr,{text}\n".encode(), TS_COLUMNS)
    row = frame.row(0, named=True)
    assert row["ts"] is None and row[PARSE_STATUS] == PARSE_ERROR
    assert row[PARSE_REASON] == f"ts: not a timestamp ({text})"


# -- the LandingZone resource ------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under root (following nothing): content hash and mtime."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            state[path.relative_to(root).as_posix()] = (
                hashlib.sha256(path.read_bytes()).hexdigest(),
                path.stat().st_mtime_ns,
            )
    return state


@pytest.fixture
def landing(tmp_path: Path) -> LandingZone:
    root = tmp_path / "landing"
    day = root / "ads" / "2024-01-02"
    day.mkdir(parents=True)
    (day / "a.csv").write_bytes(b"name,n,x,flag\na,1,1.0,true\nb,2\n")
    (day / "b.jsonl").write_bytes(b'{"name": "c", "n": 3}\nnot json\n')
    (day / "C.CSV").write_bytes(b"name,n,x,flag\nd,4,4.0,false\n")
    (day / "notes.txt").write_text("not data")
    (day / ".hidden.csv").write_bytes(b"name,n,x,flag\nh,9,9.0,true\n")
    (day / ".upload.csv.part").write_bytes(b"name,n\n")
    (day / "nested").mkdir()
    (day / "nested" / "deep.csv").write_bytes(b"name,n,x,flag\nz,0,0.0,true\n")
    (root / "ads" / "not-a-day").mkdir()
    (root / "ads" / "not-a-day" / "x.csv").write_bytes(b"name\nq\n")
    outside = tmp_path / "secrets.csv"
    outside.write_bytes(b"name,n,x,flag\nsecret,1,1.0,true\n")
    (day / "escape.csv").symlink_to(outside)
    return LandingZone(root=str(root))


def test_files_for_day_lists_only_data_files_and_reports_the_rest(landing: LandingZone) -> None:
    files, skipped = landing.files_for_day("ads", "2024-01-02")
    assert [landing.relative(f) for f in files] == [
        "ads/2024-01-02/C.CSV",
        "ads/2024-01-02/a.csv",
        "ads/2024-01-02/b.jsonl",
    ]
    notes = {r.path: r.notes for r in skipped}
    assert notes["ads/2024-01-02/escape.csv"][0].startswith("refused:")
    assert "outside the landing root" in notes["ads/2024-01-02/escape.csv"][0]
    assert notes["ads/2024-01-02/notes.txt"] == ["ignored: unsupported file type '.txt'"]
    assert notes["ads/2024-01-02/nested"] == ["ignored: not a regular file"]
    assert not any(".hidden" in p or ".upload" in p for p in notes)
    assert landing.files_for_day("ads", dt.date(2024, 1, 3)) == ([], [])
    assert landing.files_for_day("web", "2024-01-02") == ([], [])


def test_read_day_reads_every_record_and_never_the_escaping_symlink(landing: LandingZone) -> None:
    read = landing.read_day("ads", dt.date(2024, 1, 2), COLUMNS)  # type: ignore[arg-type]
    assert_frame_equal(read.frame.schema.to_frame(), pl.DataFrame(schema=polars_schema(COLUMNS)).schema.to_frame())  # type: ignore[arg-type]
    assert "secret" not in read.frame["name"].to_list()
    assert sorted(n for n in read.frame["name"].to_list() if n) == ["a", "c", "d"]
    assert read.rows == 5 and read.parse_errors == 2
    by_file = {r.path: r for r in read.files}
    assert by_file["ads/2024-01-02/b.jsonl"].rows == 2 and by_file["ads/2024-01-02/b.jsonl"].parse_errors == 1
    assert read.frame.filter(pl.col(SOURCE_FILE) == "ads/2024-01-02/a.csv")[LINE].to_list() == [2, 3]


def test_landing_files_are_never_modified(landing: LandingZone) -> None:
    root = landing.root_path
    before = snapshot(root)
    entries_before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    landing.read_day("ads", "2024-01-02", COLUMNS)  # type: ignore[arg-type]
    landing.read_day("ads", "2024-01-02", TS_COLUMNS)  # type: ignore[arg-type]
    for path in landing.files_for_day("ads", "2024-01-02")[0]:
        landing.read_file(path, COLUMNS)  # type: ignore[arg-type]
    assert snapshot(root) == before
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == entries_before  # nothing added
    assert (root.parent / "secrets.csv").read_bytes() == b"name,n,x,flag\nsecret,1,1.0,true\n"


@pytest.mark.parametrize("path", ["../secrets.csv", "ads/2024-01-02/../../../secrets.csv", "ads/2024-01-02/escape.csv"])
def test_paths_outside_the_root_are_refused(landing: LandingZone, path: str) -> None:
    with pytest.raises(LandingPathError, match="outside the landing root"):
        landing.read_file(Path(path), COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(LandingPathError):
        landing.resolve(landing.root_path / path)


def test_resolve_keeps_paths_inside_the_root(landing: LandingZone) -> None:
    assert landing.resolve("ads/2024-01-02/a.csv") == landing.root_path / "ads/2024-01-02/a.csv"
    assert landing.resolve("ads/not-a-day/../2024-01-02/a.csv") == landing.root_path / "ads/2024-01-02/a.csv"


@pytest.mark.parametrize(
    ("source", "day"),
    [("ads", "not-a-day"), ("ads", "2024-1-2"), ("ads", "2024-01-02/.."), ("ads", "../2024-01-02"),
     ("..", "2024-01-02"), ("ads/..", "2024-01-02"), ("", "2024-01-02"), (".", "2024-01-02"),
     ("../..", "2024-01-02")],
)  # fmt: skip
def test_day_folder_rejects_anything_but_source_and_date(landing: LandingZone, source: str, day: str) -> None:
    with pytest.raises(LandingPathError):
        landing.day_folder(source, day)


def test_day_folder_symlinked_outside_is_refused(landing: LandingZone, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.csv").write_bytes(b"name,n,x,flag\nleak,1,1.0,true\n")
    (landing.root_path / "ads" / "2024-01-05").symlink_to(elsewhere, target_is_directory=True)
    read = landing.read_day("ads", "2024-01-05", COLUMNS)  # type: ignore[arg-type]
    assert read.rows == 0  # nothing from outside the root is read
    assert len(read.files) == 1 and read.files[0].notes[0].startswith("refused:")
    assert landing.day_folder("ads", dt.date(2024, 1, 2)) == landing.root_path / "ads" / "2024-01-02"


def test_unreadable_file_is_reported_not_raised(landing: LandingZone) -> None:
    day = landing.root_path / "ads" / "2024-01-02"
    (day / "dangling.csv").symlink_to(day / "gone.csv")  # inside the root, but nothing there
    frame, report = landing.read_file(day / "dangling.csv", COLUMNS)  # type: ignore[arg-type]
    assert frame.height == 0 and frame.schema == polars_schema(COLUMNS)  # type: ignore[arg-type]
    assert report.notes[0].startswith("unreadable:")
    _, skipped = landing.files_for_day("ads", "2024-01-02")
    assert {r.path: r.notes for r in skipped}["ads/2024-01-02/dangling.csv"][0].startswith("ignored:")


def test_symlink_to_another_landing_file_is_not_read_twice(landing: LandingZone) -> None:
    day = landing.root_path / "ads" / "2024-01-06"
    day.mkdir(parents=True)
    (day / "a.csv").write_bytes(b"name,n,x,flag\nreal,1,1.0,true\n")
    (day / "b.csv").symlink_to(day / "a.csv")
    read = landing.read_day("ads", "2024-01-06", COLUMNS)  # type: ignore[arg-type]
    assert read.rows == 1
    assert any("ignored: symlink to ads/2024-01-06/a.csv" in note for f in read.files for note in f.notes)


def test_semicolon_separated_files_and_compact_dates() -> None:
    frame, _report = parse_bytes(
        b"name;n;x;flag\na;1;2,5;true\nb;2\n",
        ".csv",
        {"name": "str", "n": "int", "x": "str", "flag": "bool"},
        "p.csv",
        ";",
    )
    assert frame["name"].to_list() == ["a", None]
    assert frame["x"].to_list() == ["2,5", None]
    assert frame["_parse_reason"].to_list()[1] == "ragged row: expected 4 fields, found 2"
    dates, _ = parse_bytes(b"ts\n20240301\n1709251200\n", ".csv", {"ts": "datetime"}, "d.csv")
    assert [d.isoformat() for d in dates["ts"].to_list()] == ["2024-03-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"]
