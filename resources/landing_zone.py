"""The landing zone: where source files arrive. The platform only reads here.

Layout: ``<root>/<source>/<YYYY-MM-DD>/*.csv|*.jsonl``. Files are parsed robustly into typed
frames with one row per record and a per-row parse status, so a bad byte, a ragged row or a
value that is not a number becomes a quarantined row with a reason instead of an exception.

Why our own parser: polars' CSV reader silently pads short rows with nulls and aborts the whole
file on a long one, and neither polars nor pyarrow can say *which* physical line was bad. We
split the file into lines with polars (fast), count fields per line, hand the well-formed lines
to polars' CSV reader and keep the ragged ones as rejected rows with their line number.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import dagster as dg
import polars as pl

ColumnType = Literal["str", "int", "float", "datetime", "bool"]
SUPPORTED_SUFFIXES = (".csv", ".jsonl")
DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Bookkeeping columns every parsed frame carries, after the business columns.
SOURCE_FILE = "_source_file"
LINE = "_line"
PARSE_STATUS = "_parse_status"
PARSE_REASON = "_parse_reason"
RAW = "_raw"
PARSE_OK = "ok"
PARSE_ERROR = "error"

_POLARS_TYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "datetime": pl.Datetime("us", "UTC"),
    "bool": pl.Boolean(),
}
_LINE_SPLIT_SEPARATORS = ("\x1f", "\x1e", "\x1d", "\x1c", "\x07")
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


class LandingPathError(ValueError):
    """A path that does not belong to the landing zone (outside it, or not in the expected layout)."""


@dataclass
class FileReport:
    """What happened to one landing file: rows read, rows rejected while parsing, and notes."""

    path: str
    rows: int = 0
    parse_errors: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class LandingRead:
    frame: pl.DataFrame
    files: list[FileReport]

    @property
    def rows(self) -> int:
        return self.frame.height

    @property
    def parse_errors(self) -> int:
        return int((self.frame[PARSE_STATUS] == PARSE_ERROR).sum())


def polars_schema(columns: Mapping[str, ColumnType]) -> dict[str, pl.DataType]:
    """The typed schema of a parsed frame: business columns, then bookkeeping columns."""
    schema = {name: _POLARS_TYPES[kind] for name, kind in columns.items()}
    schema.update(
        {
            SOURCE_FILE: pl.String(),
            LINE: pl.Int64(),
            PARSE_STATUS: pl.String(),
            PARSE_REASON: pl.String(),
            RAW: pl.String(),
        }
    )
    return schema


def empty_frame(columns: Mapping[str, ColumnType]) -> pl.DataFrame:
    return pl.DataFrame(schema=polars_schema(columns))


# --------------------------------------------------------------------------------------------
# Value parsing: strings to types, with a reason for every value that does not parse.
# --------------------------------------------------------------------------------------------

_TS_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%dT%H:%MZ",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)


def parse_timestamp_expr(col: str) -> pl.Expr:
    """ISO 8601 with or without zone (no zone means UTC), or epoch seconds/milliseconds → UTC."""
    return pl.coalesce(_timestamp_attempts(col))


def _timestamp_attempts(col: str) -> list[pl.Expr]:
    """The ways a timestamp may be written, in order of precedence: the first that parses wins."""
    s = pl.col(col).str.strip_chars()
    attempts = [s.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us") for fmt in _TS_FORMATS]
    attempts.append(s.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    # Eight digits are a compact date (20240301), never epoch seconds (that would be 1970).
    compact = pl.when(s.str.contains(r"^\d{8}$")).then(s.str.to_date("%Y%m%d", strict=False))
    attempts.append(compact.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    digits = s.str.contains(r"^-?\d{1,16}(\.\d+)?$") & ~s.str.contains(r"^\d{8}$")
    epoch = s.cast(pl.Float64, strict=False)
    # 12+ integer digits can only be milliseconds in any plausible era (10^12 s is year 33658).
    is_ms = s.str.replace(r"^-", "").str.replace(r"\.\d+$", "").str.len_chars() >= 12
    epoch_us = pl.when(is_ms).then(epoch * 1_000).otherwise(epoch * 1_000_000)
    in_range = epoch_us.abs() < 253_402_300_800 * 1_000_000  # before year 10000
    attempts.append(
        pl.when(digits & in_range)
        .then(epoch_us.round(0).cast(pl.Int64, strict=False))
        .otherwise(None)
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
    )
    return attempts


def _typed_value(col: str, kind: ColumnType) -> tuple[pl.Expr, str | None]:
    """(typed value of a present string, label of the failure when it does not parse) for one column."""
    stripped = pl.col(col).str.strip_chars()
    if kind == "str":
        return stripped, None
    if kind == "int":
        as_float = stripped.cast(pl.Float64, strict=False)
        as_int = stripped.cast(pl.Int64, strict=False)
        integral = as_float.is_finite() & (as_float == as_float.round(0)) & (as_float.abs() < 2**53)
        return pl.coalesce(as_int, pl.when(integral).then(as_float.cast(pl.Int64, strict=False))), "not an integer"
    if kind == "float":
        return stripped.cast(pl.Float64, strict=False), "not a number"
    if kind == "datetime":  # the first format only: see `_finish_timestamps` for the others
        return _timestamp_attempts(col)[0], "not a timestamp"
    if kind == "bool":
        low = stripped.str.to_lowercase()
        return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False).otherwise(None), "not a boolean"
    raise ValueError(f"unknown column type {kind!r}")  # pragma: no cover - guarded by the Literal type


def type_columns(strings: pl.DataFrame, columns: Mapping[str, ColumnType]) -> pl.DataFrame:
    """Cast string columns to their declared types; values that do not parse become row errors.

    Two passes: the typed values first, each computed once into a column, then the reasons from them.
    In one expression the value of a column was needed three times (value, failure test, reason), and
    a timestamp value is a dozen parse attempts: it was the bulk of the parser's time.
    """
    values: list[pl.Expr] = []
    typed: list[pl.Expr] = []
    reasons: list[pl.Expr] = []
    for index, (name, kind) in enumerate(columns.items()):
        value, label = _typed_value(name, kind)
        present, parsed = f"__present_{index}", f"__typed_{index}"
        raw = pl.col(name)
        values += [(raw.is_not_null() & (raw.str.strip_chars() != "")).alias(present), value.alias(parsed)]
        typed.append(
            pl.when(pl.col(present)).then(pl.col(parsed)).otherwise(None).cast(_POLARS_TYPES[kind]).alias(name)
        )
        if label is None:
            reasons.append(pl.lit(None, pl.String))
            continue
        failed = pl.col(present) & pl.col(parsed).is_null()
        shown = raw.str.strip_chars().str.slice(0, 40)
        reasons.append(pl.when(failed).then(pl.format("{}: " + label + " ({})", pl.lit(name), shown)))
    value_reason = pl.concat_str(reasons, separator="; ", ignore_nulls=True) if reasons else pl.lit(None)
    value_reason = pl.when(value_reason == "").then(None).otherwise(value_reason)
    structural = pl.col(PARSE_REASON)
    reason = pl.coalesce(structural, value_reason)
    status = pl.when(reason.is_null()).then(pl.lit(PARSE_OK)).otherwise(pl.lit(PARSE_ERROR))
    raw_line = pl.when(reason.is_not_null()).then(pl.col(RAW))
    with_values = _finish_timestamps(strings.with_columns(values), columns)
    return with_values.select(
        *typed,
        pl.col(SOURCE_FILE),
        pl.col(LINE).cast(pl.Int64),
        status.alias(PARSE_STATUS),
        reason.alias(PARSE_REASON),
        raw_line.alias(RAW),
    )


def _finish_timestamps(frame: pl.DataFrame, columns: Mapping[str, ColumnType]) -> pl.DataFrame:
    """Parse the timestamps the first (canonical ISO) format did not, with every format, on those rows only.

    Same result as `parse_timestamp_expr` on every row (where the first attempt parses, it wins the
    coalesce), but the dozen other attempts, regexes included, run on the few odd values, not on all.
    """
    for index, (name, kind) in enumerate(columns.items()):
        if kind != "datetime":
            continue
        parsed = f"__typed_{index}"
        rows = frame.select((pl.col(f"__present_{index}") & pl.col(parsed).is_null()).arg_true()).to_series()
        if rows.len():
            rest = frame.select(pl.col(name).gather(rows)).select(parse_timestamp_expr(name)).to_series()
            frame = frame.with_columns(frame.get_column(parsed).scatter(rows, rest))
    return frame


# --------------------------------------------------------------------------------------------
# Structural parsing: bytes to string columns, one row per record, ragged rows kept as errors.
# --------------------------------------------------------------------------------------------


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _lines_series(data: bytes) -> pl.Series:
    """Physical lines of UTF-8 data as a polars Series, fast for large files."""
    for sep in _LINE_SPLIT_SEPARATORS:
        if sep.encode() not in data:
            lines = pl.read_csv(
                data,
                has_header=False,
                separator=sep,
                quote_char=None,
                infer_schema=False,
                new_columns=["line"],
                empty_string_is_null=False,
                raise_if_empty=False,
            )
            if lines.width == 0:
                return pl.Series("line", [], pl.String)
            series = lines.to_series(0).fill_null("")
            return series.str.strip_suffix("\r")
    return pl.Series("line", _split_lines(data.decode("utf-8")), pl.String)


def _decode(data: bytes, report: FileReport) -> tuple[str | None, list[tuple[int, str, str]]]:
    """Decode as UTF-8. Returns (text or None, [(line_no, raw, reason)] for lines that do not decode)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        report.notes.append("UTF-8 byte order mark removed")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
            report.notes.append("decoded as UTF-16 (byte order mark)")
            return text, []
        except UnicodeDecodeError:
            pass
    if b"\r" in data and b"\n" not in data:
        # Old Mac / Excel exports end lines with a bare CR; everything below splits lines at LF.
        data = data.replace(b"\r", b"\n")
        report.notes.append("CR line endings read as line breaks")
    if data.isascii():
        return data.decode("ascii"), []
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    good: list[str] = []
    bad: list[tuple[int, str, str]] = []
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, start=1):
        raw = raw.removesuffix(b"\r")
        try:
            good.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            good.append("")  # keeps line numbers aligned; the line is reported as rejected
            shown = raw.decode("utf-8", errors="backslashreplace")
            bad.append((number, shown, f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"))
    report.notes.append(f"{len(bad)} line(s) are not valid UTF-8")
    return "\n".join(good) + "\n", bad


def _error_rows(rows: Iterable[tuple[int, str, str]], source_file: str) -> pl.DataFrame:
    lines, raws, reasons = [], [], []
    for line, raw, reason in rows:
        lines.append(line)
        raws.append(raw)
        reasons.append(reason)
    return pl.DataFrame(
        {LINE: lines, RAW: raws, PARSE_REASON: reasons},
        schema={LINE: pl.Int64, RAW: pl.String, PARSE_REASON: pl.String},
    ).with_columns(pl.lit(source_file).alias(SOURCE_FILE))


def _line_fields(line: str, separator: str = ",") -> list[str]:
    """The CSV fields of one physical line. Lines end at LF, so a stray CR is content here; the csv
    module would raise on it, so it is masked (it never changes where fields split)."""
    return next(csv.reader([line.replace("\r", " ")], delimiter=separator), [])


def _normalise_header(names: Sequence[str]) -> list[str]:
    return [n.strip().strip('"').strip().lower() for n in names]


def _header_problem(found: list[str], expected: Sequence[str], report: FileReport, min_overlap: int = 1) -> str | None:
    known = [n for n in found if n in expected]
    if len(known) < min_overlap:
        return (
            f"header does not match the expected columns (expected {', '.join(expected)}; "
            f"found {', '.join(found)[:200] or 'nothing'})"
        )
    dupes = sorted({n for n in found if found.count(n) > 1})
    if dupes:
        return f"header repeats column(s) {', '.join(dupes)}"
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    if missing:
        report.notes.append(f"missing column(s): {', '.join(missing)}")
    if extra:
        report.notes.append(f"extra column(s) ignored: {', '.join(extra)}")
    return None


def _strings_frame(records: pl.DataFrame, header: list[str], expected: Sequence[str], source_file: str) -> pl.DataFrame:
    """Project parsed string records onto the expected columns (missing → null, extra dropped)."""
    exprs = [pl.col(name) if name in header else pl.lit(None, pl.String).alias(name) for name in expected]
    return records.select(
        *exprs,
        pl.lit(source_file).alias(SOURCE_FILE),
        pl.col(LINE).cast(pl.Int64),
        pl.lit(None, pl.String).alias(PARSE_REASON),
        pl.col(RAW),
    )


def _finish(good: pl.DataFrame, errors: pl.DataFrame, expected: Sequence[str], source_file: str) -> pl.DataFrame:
    err = errors.select(
        *[pl.lit(None, pl.String).alias(n) for n in expected],
        pl.lit(source_file).alias(SOURCE_FILE),
        pl.col(LINE),
        pl.col(PARSE_REASON),
        pl.col(RAW),
    )
    return pl.concat([good, err], how="vertical").sort(LINE)


def _parse_csv_slow(
    text: str, expected: Sequence[str], source_file: str, report: FileReport, separator: str = ","
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Python's csv module, for files with quoted line breaks. Exact but ~10x slower."""
    physical = text.split("\n")
    if physical and physical[-1] == "":
        physical.pop()
    # One item per LF-terminated line, so line numbers count the same lines as the fast path.
    reader = csv.reader((line + "\n" for line in physical), strict=True, delimiter=separator)

    def raw_text(first: int) -> str:
        """The record as it stands in the file (all its physical lines), for rejected rows."""
        return "\n".join(line.removesuffix("\r") for line in physical[first - 1 : reader.line_num])

    header: list[str] | None = None
    header_problem = ""
    cols: dict[str, list[str | None]] = {}
    lines: list[int] = []
    raws: list[str | None] = []
    errors: list[tuple[int, str, str]] = []
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append((start, raw_text(start), f"malformed CSV: {exc}"))
            start = reader.line_num + 1
            continue
        line_no, start = start, reader.line_num + 1
        raw = raw_text(line_no)
        if not raw.strip():
            continue
        if header is None:
            header = _normalise_header(row)
            problem = _header_problem(header, expected, report)
            if problem:
                report.notes.append(problem)
                header, header_problem = [], problem
                continue
            cols = {name: [] for name in header}
            continue
        if not header:
            errors.append((line_no, raw, header_problem))
            continue
        if len(row) != len(header):
            errors.append((line_no, raw, f"ragged row: expected {len(header)} fields, found {len(row)}"))
            continue
        for name, value in zip(header, row, strict=True):
            cols[name].append(value)
        lines.append(line_no)
        raws.append(raw)
    good_records = pl.DataFrame(
        {**cols, LINE: lines, RAW: raws},
        schema={**{n: pl.String for n in cols}, LINE: pl.Int64, RAW: pl.String},
    )
    good = _strings_frame(good_records, list(cols), expected, source_file)
    return good, _error_rows(errors, source_file)


def parse_csv(
    data: bytes,
    columns: Mapping[str, ColumnType],
    source_file: str,
    report: FileReport | None = None,
    separator: str = ",",
) -> pl.DataFrame:
    """Parse CSV bytes into typed rows; every record becomes a row, bad ones with a reason."""
    if len(separator) != 1 or separator in '"\r\n':
        raise ValueError(f"separator must be one character other than a quote or line break, got {separator!r}")
    report = report or FileReport(source_file)
    expected = list(columns)
    text, undecodable = _decode(data, report)
    if text is None or not text.strip():
        if not undecodable:
            report.notes.append("empty file")
        good = pl.DataFrame(schema={n: pl.String for n in expected})
        good = _strings_frame(
            good.with_columns(pl.lit(None, pl.Int64).alias(LINE), pl.lit(None, pl.String).alias(RAW)),
            expected,
            expected,
            source_file,
        )
        return _finalise(_finish(good, _error_rows(undecodable, source_file), expected, source_file), columns, report)
    encoded = text.encode("utf-8")
    lines = _lines_series(encoded)
    quoted = lines.str.contains('"', literal=True)
    if bool(quoted.any()) and any(line.count('"') % 2 for line in lines.filter(quoted).to_list()):
        good, errors = _parse_csv_slow(text, expected, source_file, report, separator)
        errors = pl.concat([errors, _error_rows(undecodable, source_file)])
        return _finalise(_finish(good, errors, expected, source_file), columns, report)

    frame = pl.DataFrame({"line": lines}).with_row_index(LINE, offset=1)
    frame = frame.with_columns(pl.col(LINE).cast(pl.Int64))
    bad_lines = {n for n, _, _ in undecodable}
    frame = frame.filter(pl.col("line").str.strip_chars() != "")
    if bad_lines:
        frame = frame.filter(~pl.col(LINE).is_in(list(bad_lines)))
    if frame.height == 0:
        report.notes.append("no header row")
        empty = pl.DataFrame(schema={**{n: pl.String for n in expected}, LINE: pl.Int64, RAW: pl.String})
        good = _strings_frame(empty, expected, expected, source_file)
        return _finalise(_finish(good, _error_rows(undecodable, source_file), expected, source_file), columns, report)

    header_line = frame.row(0, named=True)
    header = _normalise_header(_line_fields(header_line["line"], separator))
    body = frame.slice(1)
    problem = _header_problem(header, expected, report)
    if problem:
        rejected = [(n, line, problem) for n, line in zip(body[LINE], body["line"], strict=True)]
        good = _strings_frame(
            pl.DataFrame(schema={**{n: pl.String for n in expected}, LINE: pl.Int64, RAW: pl.String}),
            expected,
            expected,
            source_file,
        )
        errors = pl.concat([_error_rows(rejected, source_file), _error_rows(undecodable, source_file)])
        report.notes.append(problem)
        return _finalise(_finish(good, errors, expected, source_file), columns, report)

    if body.height == 0:
        report.notes.append("header only: no records")
    width = len(header)
    plain_count = pl.col("line").str.count_matches(separator, literal=True) + 1
    body = body.with_columns(
        pl.when(pl.col("line").str.contains('"', literal=True)).then(None).otherwise(plain_count).alias("_n")
    )
    quoted_rows = body.filter(pl.col("_n").is_null())
    if quoted_rows.height:
        counts = [len(_line_fields(line, separator)) for line in quoted_rows["line"].to_list()]
        fixed = quoted_rows.with_columns(pl.Series("_n", counts, pl.UInt32))
        body = pl.concat([body.filter(pl.col("_n").is_not_null()), fixed]).sort(LINE)
    ok = body.filter(pl.col("_n") == width)
    ragged = body.filter(pl.col("_n") != width)
    if ok.height:
        payload = ok["line"].str.join("\n").item().encode("utf-8") + b"\n"
        records = pl.read_csv(
            payload,
            separator=separator,
            has_header=False,
            new_columns=header,
            infer_schema=False,
            empty_string_is_null=False,
            raise_if_empty=False,
        )
        records = records.with_columns(ok[LINE].alias(LINE), ok["line"].alias(RAW))
    else:
        records = pl.DataFrame(schema={**{n: pl.String for n in header}, LINE: pl.Int64, RAW: pl.String})
    good = _strings_frame(records, header, expected, source_file)
    ragged_rows = [
        (n, line, f"ragged row: expected {width} fields, found {count}")
        for n, line, count in zip(ragged[LINE], ragged["line"], ragged["_n"], strict=True)
    ]
    errors = pl.concat([_error_rows(ragged_rows, source_file), _error_rows(undecodable, source_file)])
    return _finalise(_finish(good, errors, expected, source_file), columns, report)


def _json_value(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True)


# A JSON Lines record that is one flat object of lower-case keys and plain string (no escapes) or null values,
# as exporters write them. Such a line is valid JSON whose values are the text between the quotes, so polars
# reads it without a Python round trip; every other line goes through `json.loads`.
_JSON_STRING = r'"[^"\\\x00-\x1f]*"'
_FLAT_VALUE = rf"[ \t]*:[ \t]*(?:{_JSON_STRING}|null)"
_FLAT_PAIR = rf'"[a-z0-9_]+"{_FLAT_VALUE}'
_FLAT_OBJECT = rf"^\{{[ \t]*(?:{_FLAT_PAIR}(?:[ \t]*,[ \t]*{_FLAT_PAIR})*)?[ \t]*\}}$"
_KEY = re.compile(r'"([a-z0-9_]+)"')


def _flat_records(lines: list[str], skip: set[int], expected: Sequence[str]) -> tuple[pl.DataFrame, set[str]]:
    """Records of the lines that are flat string objects with some expected key and no repeated key:
    (expected columns + line number + raw line, their keys). `parse_jsonl` reads the other lines itself."""
    frame = pl.DataFrame({"line": lines}, schema={"line": pl.String}).with_row_index(LINE, offset=1)
    frame = frame.filter(pl.col("line").str.contains(_FLAT_OBJECT))
    if skip:
        frame = frame.filter(~pl.col(LINE).is_in(list(skip)))
    # The keys of a line, in order: what is left once the values are cut out. Few distinct ones per file.
    frame = frame.with_columns(pl.col("line").str.replace_all(_FLAT_VALUE, "").alias("_keys"))
    keys: set[str] = set()
    usable = []
    for signature in frame.get_column("_keys").unique().to_list():
        names = _KEY.findall(signature)
        if len(set(names)) == len(names) and any(name in expected for name in names):
            usable.append(signature)
            keys.update(names)
    frame = frame.filter(pl.col("_keys").is_in(usable))
    values = [
        pl.col("line").str.extract(rf'"{re.escape(name)}"[ \t]*:[ \t]*"([^"]*)"', 1).alias(name) for name in expected
    ]
    records = frame.select(*values, pl.col(LINE).cast(pl.Int64), pl.col("line").alias(RAW))
    return records, keys


def parse_jsonl(
    data: bytes, columns: Mapping[str, ColumnType], source_file: str, report: FileReport | None = None
) -> pl.DataFrame:
    """Parse JSON Lines bytes into typed rows; every non-blank line becomes a row."""
    report = report or FileReport(source_file)
    expected = list(columns)
    text, undecodable = _decode(data, report)
    cols: dict[str, list[str | None]] = {name: [] for name in expected}
    lines: list[int] = []
    raws: list[str] = []
    errors = list(undecodable)
    bad = {n for n, _, _ in undecodable}
    physical = _split_lines(text or "")
    flat, seen_keys = _flat_records(physical, bad, expected)
    done = bad | set(flat.get_column(LINE).to_list())
    for number, line in enumerate(physical, start=1):
        if number in done or not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            errors.append((number, line, f"invalid JSON: {getattr(exc, 'msg', exc)}"))
            continue
        if not isinstance(record, dict):
            errors.append((number, line, f"not a JSON object (found {type(record).__name__})"))
            continue
        keys = {str(k).strip().lower(): v for k, v in record.items()}
        seen_keys.update(keys)
        if not any(name in keys for name in expected):
            errors.append((number, line, "record has none of the expected fields"))
            continue
        for name in expected:
            cols[name].append(_json_value(keys.get(name)))
        lines.append(number)
        raws.append(line)
    if not lines and not flat.height and not errors:
        report.notes.append("empty file")
    extra = sorted(seen_keys - set(expected))
    if extra:
        report.notes.append(f"extra field(s) ignored: {', '.join(extra)[:200]}")
    records = pl.DataFrame(
        {**cols, LINE: lines, RAW: raws},
        schema={**{n: pl.String for n in expected}, LINE: pl.Int64, RAW: pl.String},
    )
    records = pl.concat([flat, records], how="vertical")
    good = _strings_frame(records, expected, expected, source_file)
    return _finalise(_finish(good, _error_rows(errors, source_file), expected, source_file), columns, report)


def _finalise(strings: pl.DataFrame, columns: Mapping[str, ColumnType], report: FileReport) -> pl.DataFrame:
    typed = type_columns(strings, columns)
    report.rows = typed.height
    report.parse_errors = int((typed[PARSE_STATUS] == PARSE_ERROR).sum())
    return typed


def parse_bytes(
    data: bytes, suffix: str, columns: Mapping[str, ColumnType], source_file: str, separator: str = ","
) -> tuple[pl.DataFrame, FileReport]:
    report = FileReport(source_file)
    if suffix.lower() == ".jsonl":
        return parse_jsonl(data, columns, source_file, report), report
    return parse_csv(data, columns, source_file, report, separator), report


# --------------------------------------------------------------------------------------------
# The resource.
# --------------------------------------------------------------------------------------------


class LandingZone(dg.ConfigurableResource):
    """Read-only access to landing files: listing by source and day, and robust parsing."""

    root: str

    @property
    def root_path(self) -> Path:
        return Path(self.root).expanduser().resolve()

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """Resolve a path (relative to the root, or absolute) and refuse anything outside the root."""
        root = self.root_path
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        resolved = candidate.resolve()
        if not resolved.is_relative_to(root):
            raise LandingPathError(f"{path} resolves to {resolved}, outside the landing root {root}")
        return resolved

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root_path).as_posix()

    def day_folder(self, source: str, day: dt.date | str) -> Path:
        day_text = day.isoformat() if isinstance(day, dt.date) else str(day)
        if not DAY_FOLDER.match(day_text) or "/" in source or source in ("", ".", ".."):
            raise LandingPathError(f"not a landing folder: source={source!r} day={day_text!r}")
        return self.resolve(Path(source) / day_text)

    def files_for_day(self, source: str, day: dt.date | str) -> tuple[list[Path], list[FileReport]]:
        """The readable data files of a source for a day, sorted; plus reports of skipped entries."""
        try:
            folder = self.day_folder(source, day)
        except LandingPathError as exc:
            return [], [FileReport(f"{source}/{day}", notes=[f"refused: {exc}"])]
        if not folder.is_dir():
            return [], []
        files: list[Path] = []
        skipped: list[FileReport] = []
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue  # hidden and in-flight upload files
            shown = f"{source}/{folder.name}/{entry.name}"
            try:
                resolved = self.resolve(entry)
            except LandingPathError as exc:
                skipped.append(FileReport(shown, notes=[f"refused: {exc}"]))
                continue
            if entry.is_symlink():
                # A link to another landing file would read the same records twice.
                skipped.append(FileReport(shown, notes=[f"ignored: symlink to {self.relative(resolved)}"]))
                continue
            if not resolved.is_file():
                skipped.append(FileReport(shown, notes=["ignored: not a regular file"]))
            elif entry.suffix.lower() not in SUPPORTED_SUFFIXES:
                skipped.append(FileReport(shown, notes=[f"ignored: unsupported file type {entry.suffix!r}"]))
            else:
                files.append(resolved)
        return files, skipped

    def read_file(
        self, path: Path, columns: Mapping[str, ColumnType], separator: str = ","
    ) -> tuple[pl.DataFrame, FileReport]:
        resolved = self.resolve(path)
        shown = self.relative(resolved)
        try:
            data = resolved.read_bytes()
        except OSError as exc:
            report = FileReport(shown, notes=[f"unreadable: {exc.strerror or exc}"])
            return empty_frame(columns), report
        return parse_bytes(data, resolved.suffix, columns, shown, separator)

    def files_in(self, folder: str, suffixes: tuple[str, ...] = (".csv",)) -> tuple[list[Path], list[FileReport]]:
        """The data files directly in a landing folder (e.g. `paths`), sorted; plus skipped entries."""
        root = self.resolve(folder)
        if not root.is_dir():
            return [], []
        files: list[Path] = []
        skipped: list[FileReport] = []
        for entry in sorted(root.iterdir()):
            if entry.name.startswith("."):
                continue
            shown = f"{folder}/{entry.name}"
            try:
                resolved = self.resolve(entry)
            except LandingPathError as exc:
                skipped.append(FileReport(shown, notes=[f"refused: {exc}"]))
                continue
            if entry.is_symlink() or not resolved.is_file():
                skipped.append(FileReport(shown, notes=["ignored: not a regular file"]))
            elif entry.suffix.lower() not in suffixes:
                skipped.append(FileReport(shown, notes=[f"ignored: unsupported file type {entry.suffix!r}"]))
            else:
                files.append(resolved)
        return files, skipped

    def read_day(self, source: str, day: dt.date | str, columns: Mapping[str, ColumnType]) -> LandingRead:
        """Every record of a source's day, typed, with parse status; never raises on bad content."""
        files, reports = self.files_for_day(source, day)
        frames = []
        for path in files:
            frame, report = self.read_file(path, columns)
            frames.append(frame)
            reports.append(report)
        frame = pl.concat(frames, how="vertical") if frames else empty_frame(columns)
        return LandingRead(frame=frame, files=reports)
