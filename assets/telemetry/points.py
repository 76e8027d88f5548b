"""Telemetry points: `landing/telemetry/<host>/<metric>/*.csv` (header `timestamp,value`) → typed, deduplicated points.

Files may have any name and span any number of days, so a day's run cannot pick its files by name. A small index
of the landing files (path, size, mtime_ns, min/max timestamp and day) is kept in the lake at
`lake/telemetry/_landing_index.parquet` (written atomically). Each run lists the landing folders (cheap), re-reads
only the files whose size or mtime changed since they were indexed, and then reads the files whose day range
overlaps the run's days. A range run (single-run backfill) reads each file once.

Rows and the day they belong to:
- a row's day is the UTC date of its timestamp;
- a row whose timestamp does not parse (or a ragged row) belongs to the day of the nearest earlier parseable row
  of its file (else the nearest later one, else the UTC date of the file's mtime), so every landed row is counted
  in exactly one partition: rows in = accepted + quarantined.

Rejected rows go to `telemetry/points_quarantine` with stage, rule and reason: `parse` (ragged row, bad
timestamp, non-numeric value), `cleansing` (`duplicate_row`: the same host, metric, timestamp and value again;
`conflicting_duplicate`: the same host, metric and timestamp with another value; `missing_value`;
`non_finite_value`), `contract`. **Conflict rule**: of the rows sharing host, metric and timestamp, the row from
the most recently modified file wins (ties: the larger path, then the later line), because a file written later
is a correction of an earlier one; the others are quarantined, naming the winner.

Host and metric come from the folder names. Paths are resolved by the landing zone, which refuses anything
outside the landing root; symlinks, hidden and non-CSV files are skipped and reported.
"""

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import dataframely as dy
import numpy as np
import polars as pl
from upath import UPath

from intelligence import policy
from intelligence.checks import contract_check_results, contract_check_specs
from intelligence.cleansing import PARTITION_DATE, REJECT, REJECT_DETAIL, quarantine_schema, run_cleansing
from intelligence.contracts import Contract
from intelligence.partitions import DAILY, partition_days
from intelligence.sources import QUARANTINE_IO_MANAGER, code_version
from resources.lake import PARTITION_COLUMN, write_parquet_atomic
from resources.landing_zone import (
    LINE,
    PARSE_ERROR,
    PARSE_OK,
    PARSE_REASON,
    PARSE_STATUS,
    RAW,
    SOURCE_FILE,
    ColumnType,
    FileReport,
    LandingPathError,
    LandingZone,
    parse_csv,
    parse_timestamp_expr,
)

FOLDER = "telemetry"
COLUMNS: dict[str, ColumnType] = {"timestamp": "datetime", "value": "float"}
BUSINESS = ["host", "metric", "timestamp", "value"]
KEY = dg.AssetKey(["telemetry", "points"])
QUARANTINE_KEY = dg.AssetKey(["telemetry", "points_quarantine"])
LANDING_KEY = dg.AssetKey(["landing", "telemetry"])
INDEX_PARTS = ("telemetry", "_landing_index.parquet")
MTIME = "_mtime_ns"

# Automation carries new points down the chain; the lead's sensors decide which days to run.
AUTOMATION = policy.EAGER


class Point(dy.Schema):
    host = dy.String(primary_key=True, min_length=1)
    metric = dy.String(primary_key=True, min_length=1)
    timestamp = dy.Datetime(primary_key=True, time_zone="UTC", description="UTC.")
    value = dy.Float64(nullable=False, allow_inf=False, allow_nan=False)
    day = dy.Date(nullable=False, description="UTC date of the timestamp (the partition).")

    @dy.rule()
    def day_of_timestamp(cls) -> pl.Expr:
        return pl.col("timestamp").dt.date() == pl.col("day")


CONTRACT = Contract(
    schema=Point,
    version="1.0.0",
    owner="team:sre",
    description="One row per telemetry sample: host, metric, UTC timestamp and a finite value.",
)
SCHEMA = CONTRACT.polars_schema

INDEX_SCHEMA: dict[str, pl.DataType] = {
    "path": pl.String(),
    "host": pl.String(),
    "metric": pl.String(),
    "size": pl.Int64(),
    "mtime_ns": pl.Int64(),
    "rows": pl.Int64(),
    "parse_errors": pl.Int64(),
    "min_ts": pl.Datetime("us", "UTC"),
    "max_ts": pl.Datetime("us", "UTC"),
    "min_day": pl.Date(),
    "max_day": pl.Date(),
}


# --------------------------------------------------------------------------------------------------------------
# the landing index


@dataclass(frozen=True)
class LandingFile:
    path: Path  # resolved, inside the landing root
    relative: str  # relative to the landing root, as shown in provenance
    host: str
    metric: str
    size: int
    mtime_ns: int


@dataclass
class Scan:
    """What one run found: the files, the skipped entries, and the index brought up to date."""

    files: list[LandingFile]
    skipped: list[FileReport]
    index: pl.DataFrame
    reread: list[str] = field(default_factory=list)  # files parsed because new or changed
    rows: pl.DataFrame | None = None  # typed rows of the re-read files for this run's days


def list_landing_files(landing: LandingZone) -> tuple[list[LandingFile], list[FileReport]]:
    """Every `telemetry/<host>/<metric>/*.csv` file, with its size and mtime; plus what was skipped and why."""
    files: list[LandingFile] = []
    skipped: list[FileReport] = []
    try:
        root = landing.resolve(FOLDER)
    except LandingPathError as exc:
        return [], [FileReport(FOLDER, notes=[f"refused: {exc}"])]
    if not root.is_dir():
        return [], []
    for host_dir in _subfolders(root, FOLDER, skipped):
        for metric_dir in _subfolders(host_dir, f"{FOLDER}/{host_dir.name}", skipped):
            folder = f"{FOLDER}/{host_dir.name}/{metric_dir.name}"
            try:
                found, notes = landing.files_in(folder, suffixes=(".csv",))
            except LandingPathError as exc:
                skipped.append(FileReport(folder, notes=[f"refused: {exc}"]))
                continue
            skipped.extend(notes)
            for path in found:
                stat = path.stat()
                files.append(
                    LandingFile(
                        path=path,
                        relative=landing.relative(path),
                        host=host_dir.name,
                        metric=metric_dir.name,
                        size=stat.st_size,
                        mtime_ns=stat.st_mtime_ns,
                    )
                )
    return files, skipped


def _subfolders(folder: Path, shown: str, skipped: list[FileReport]) -> Iterator[Path]:
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            skipped.append(FileReport(f"{shown}/{entry.name}", notes=["ignored: symlinked folder"]))
        elif entry.is_dir():
            yield entry
        else:
            skipped.append(FileReport(f"{shown}/{entry.name}", notes=["ignored: not in <host>/<metric>/ layout"]))


def index_path(lake_base: str) -> UPath:
    return UPath(lake_base).joinpath(*INDEX_PARTS)


def read_index(path: UPath) -> pl.DataFrame:
    """The stored index, or an empty one (missing, unreadable or of another layout: it is rebuilt)."""
    try:
        if not path.exists():
            return pl.DataFrame(schema=INDEX_SCHEMA)
        with path.open("rb") as handle:
            frame = pl.read_parquet(handle)
        return frame.select([pl.col(n).cast(t) for n, t in INDEX_SCHEMA.items()])
    except Exception:  # a damaged cache is rebuilt, never trusted
        return pl.DataFrame(schema=INDEX_SCHEMA)


def write_index(index: pl.DataFrame, path: UPath) -> None:
    # Two runs updating the index at once: the last writer wins and the other's entries are re-read next
    # time. The write is atomic, so a reader never sees a torn file.
    write_parquet_atomic(index.sort("path"), path)


FAST_HEADER = b"timestamp,value"
_STR_COLUMNS: dict[str, ColumnType] = {"timestamp": "str", "value": "str"}
_RAW_SCHEMA: dict[str, pl.DataType] = {
    "timestamp": pl.String(),
    "value": pl.String(),
    SOURCE_FILE: pl.String(),
    LINE: pl.Int64(),
    PARSE_REASON: pl.String(),
    RAW: pl.String(),
}


def _plain_body(data: bytes) -> bytes | None:
    """The records of a plain file (`timestamp,value` header, one comma per line, no quotes, blank lines or CR,
    ASCII), else None. Plain files are parsed together in one pass; anything else goes through the landing zone's
    robust parser, file by file."""
    if not data.isascii() or b'"' in data or b"\r" in data:
        return None
    head, _, body = data.partition(b"\n")
    if head.strip().lower() != FAST_HEADER:
        return None
    if body and not body.endswith(b"\n"):
        body += b"\n"
    if not body:
        return b""
    lines = body[:-1].split(b"\n")
    if any(line.count(b",") != 1 for line in lines):  # also catches blank lines
        return None
    return body


def read_landing_files(
    landing: LandingZone, files: Sequence[LandingFile], unreadable: list[str] | None = None
) -> pl.DataFrame:
    """Every record of `files` as strings with provenance, the file's host, metric and mtime; never raises on
    bad content (structural problems are in `_parse_reason`). Files that cannot be read are added to
    `unreadable` (and never indexed, so the next run tries again)."""
    bodies: list[bytes] = []
    plain_files: list[LandingFile] = []
    counts: list[int] = []
    frames: list[pl.DataFrame] = []
    meta = pl.DataFrame(
        {
            SOURCE_FILE: [f.relative for f in files],
            "host": [f.host for f in files],
            "metric": [f.metric for f in files],
            MTIME: [f.mtime_ns for f in files],
        },
        schema={SOURCE_FILE: pl.String, "host": pl.String, "metric": pl.String, MTIME: pl.Int64},
    )
    for file in files:
        try:
            data = landing.resolve(file.path).read_bytes()
        except OSError:
            if unreadable is not None:
                unreadable.append(file.relative)
            continue
        body = _plain_body(data)
        if body is None:
            parsed = parse_csv(data, _STR_COLUMNS, file.relative)
            frames.append(parsed.select(list(_RAW_SCHEMA)))
        elif body:
            bodies.append(body)
            plain_files.append(file)
            counts.append(body.count(b"\n"))
    if bodies:
        records = pl.read_csv(
            b"".join(bodies),
            has_header=False,
            new_columns=["timestamp", "value"],
            schema_overrides={"timestamp": pl.String, "value": pl.String},
            quote_char=None,
            infer_schema=False,
            empty_string_is_null=False,
        )
        n = np.asarray(counts, dtype=np.int64)
        starts = np.repeat(np.cumsum(n) - n, n)
        records = records.with_columns(
            pl.Series(SOURCE_FILE, np.repeat(np.array([f.relative for f in plain_files], dtype=object), n), pl.String),
            pl.Series(LINE, np.arange(int(n.sum()), dtype=np.int64) - starts + 2),
            pl.lit(None, pl.String).alias(PARSE_REASON),
            pl.lit(None, pl.String).alias(RAW),
        )
        frames.append(records.select(list(_RAW_SCHEMA)))
    strings = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=_RAW_SCHEMA)
    return strings.join(meta, on=SOURCE_FILE, how="left")


def type_records(strings: pl.DataFrame) -> pl.DataFrame:
    """Strings → typed timestamp and value with a parse status and reason; each row gets its day.

    Timestamps take a fast path for the common `YYYY-MM-DDTHH:MM:SSZ`; the rest go through the landing zone's
    full parser (ISO with or without zone, epoch seconds or milliseconds). A row whose timestamp does not parse
    belongs to the day of the nearest earlier parseable row of its file (else the nearest later one, else the
    file's mtime date).
    """
    ts_text = pl.col("timestamp").str.strip_chars()
    frame = strings.with_columns(
        ts_text.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False).alias("_ts"),
        pl.col("value").str.strip_chars().alias("_value_text"),
    )
    slow = frame.select((pl.col("_ts").is_null() & (ts_text != "")).alias("slow")).to_series()
    if slow.any():
        rows = slow.arg_true()
        parsed = frame[rows].select(parse_timestamp_expr("timestamp")).to_series()
        frame = frame.with_columns(frame.get_column("_ts").scatter(rows, parsed))
    value = pl.col("_value_text").cast(pl.Float64, strict=False)
    present_ts = ts_text.is_not_null() & (ts_text != "")
    present_value = pl.col("_value_text").is_not_null() & (pl.col("_value_text") != "")
    ts_reason = pl.when(present_ts & pl.col("_ts").is_null()).then(
        pl.format("timestamp: not a timestamp ({})", ts_text.str.slice(0, 40))
    )
    value_reason = pl.when(present_value & value.is_null()).then(
        pl.format("value: not a number ({})", pl.col("_value_text").str.slice(0, 40))
    )
    typed_reason = pl.concat_str([ts_reason, value_reason], separator="; ", ignore_nulls=True)
    typed_reason = pl.when(typed_reason == "").then(None).otherwise(typed_reason)
    reason = pl.coalesce(pl.col(PARSE_REASON), typed_reason)
    mtime_day = pl.from_epoch(pl.col(MTIME), time_unit="ns").dt.replace_time_zone("UTC").dt.date()
    typed = frame.select(
        "host",
        "metric",
        pl.col("_ts").alias("timestamp"),
        pl.when(present_value).then(value).alias("value"),
        SOURCE_FILE,
        LINE,
        pl.when(reason.is_null()).then(pl.lit(PARSE_OK)).otherwise(pl.lit(PARSE_ERROR)).alias(PARSE_STATUS),
        reason.alias(PARSE_REASON),
        pl.when(reason.is_not_null())
        .then(pl.coalesce(pl.col(RAW), pl.concat_str(["timestamp", "value"], separator=",", ignore_nulls=True)))
        .alias(RAW),
        MTIME,
        mtime_day.alias("_mtime_day"),
    ).sort(SOURCE_FILE, LINE)
    day = pl.col("timestamp").dt.date()
    return (
        typed.with_columns(
            day.forward_fill().over(SOURCE_FILE).fill_null(day.backward_fill().over(SOURCE_FILE)).alias("day")
        )
        .with_columns(pl.col("day").fill_null(pl.col("_mtime_day")))
        .drop("_mtime_day")
    )


def index_rows(files: Sequence[LandingFile], typed: pl.DataFrame) -> pl.DataFrame:
    """One index entry per file: size, mtime and the timestamp and day range of its rows."""
    stats = typed.group_by(SOURCE_FILE).agg(
        pl.len().cast(pl.Int64).alias("rows"),
        (pl.col(PARSE_STATUS) != PARSE_OK).sum().cast(pl.Int64).alias("parse_errors"),
        pl.col("timestamp").min().alias("min_ts"),
        pl.col("timestamp").max().alias("max_ts"),
        pl.col("day").min().alias("min_day"),
        pl.col("day").max().alias("max_day"),
    )
    listed = pl.DataFrame(
        {
            "path": [f.relative for f in files],
            "host": [f.host for f in files],
            "metric": [f.metric for f in files],
            "size": [f.size for f in files],
            "mtime_ns": [f.mtime_ns for f in files],
        },
        schema={k: INDEX_SCHEMA[k] for k in ("path", "host", "metric", "size", "mtime_ns")},
    )
    joined = listed.join(stats.rename({SOURCE_FILE: "path"}), on="path", how="left")
    return joined.with_columns(pl.col("rows").fill_null(0), pl.col("parse_errors").fill_null(0)).select(
        [pl.col(n).cast(t) for n, t in INDEX_SCHEMA.items()]
    )


def refresh_index(landing: LandingZone, index: pl.DataFrame, days: Sequence[dt.date]) -> Scan:
    """List the landing files and re-read those new or changed since `index`; keep the rows `days` need."""
    files, skipped = list_landing_files(landing)
    known = {row[0]: (row[1], row[2]) for row in index.select("path", "size", "mtime_ns").iter_rows()}
    changed = [f for f in files if known.get(f.relative) != (f.size, f.mtime_ns)]
    unreadable: list[str] = []
    typed = type_records(read_landing_files(landing, changed, unreadable)) if changed else None
    fresh = index_rows(changed, typed) if typed is not None else pl.DataFrame(schema=INDEX_SCHEMA)
    fresh = fresh.filter(~pl.col("path").is_in(unreadable))
    skipped.extend(FileReport(path, notes=["unreadable: tried again on the next run"]) for path in unreadable)
    current = [f.relative for f in files]
    reread = [f.relative for f in changed]
    kept = index.filter(pl.col("path").is_in(current) & ~pl.col("path").is_in(reread))
    scan = Scan(files=files, skipped=skipped, index=pl.concat([kept, fresh], how="vertical"), reread=reread)
    if typed is not None:
        scan.rows = typed.filter(pl.col("day").is_in(list(days)))
    return scan


def files_for_days(index: pl.DataFrame, days: Sequence[dt.date]) -> list[str]:
    """Index entries whose day range overlaps `days` (the files that may hold rows of those days)."""
    # a run's partition keys are one contiguous range, so overlapping [first, last] is the test
    overlap = (pl.col("min_day") <= max(days)) & (pl.col("max_day") >= min(days)) & (pl.col("rows") > 0)
    return sorted(index.filter(overlap).get_column("path").to_list())


def rows_for_days(landing: LandingZone, scan: Scan, days: Sequence[dt.date]) -> tuple[pl.DataFrame, list[str]]:
    """Every landed record of `days`, typed, in conflict-rule priority order (newest file first); and the files."""
    wanted = files_for_days(scan.index, days)
    fresh = set(scan.reread)
    by_path = {f.relative: f for f in scan.files}
    stale = [by_path[p] for p in wanted if p not in fresh and p in by_path]
    frames = [scan.rows] if scan.rows is not None else []
    if stale:
        frames.append(type_records(read_landing_files(landing, stale)).filter(pl.col("day").is_in(list(days))))
    frame = pl.concat(frames, how="vertical") if frames else type_records(pl.DataFrame(schema=_RAW_SCHEMA_WITH_META))
    frame = frame.sort(MTIME, SOURCE_FILE, LINE, descending=True)
    return frame.with_columns(pl.col("day").alias(PARTITION_DATE)), wanted


_RAW_SCHEMA_WITH_META: dict[str, pl.DataType] = {
    **_RAW_SCHEMA,
    "host": pl.String(),
    "metric": pl.String(),
    MTIME: pl.Int64(),
}


# --------------------------------------------------------------------------------------------------------------
# cleansing


def flag_telemetry_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Missing and non-finite values, and conflicting duplicates (the newest file's row wins; see module doc).

    Rows arrive ordered by priority (newest file first), so the first valid row of each key is the winner.
    """
    valid = pl.col("value").is_not_null() & pl.col("value").is_finite()
    key = ["host", "metric", "timestamp"]
    ranked = frame.with_columns(valid.alias("_valid"), pl.int_range(pl.len()).alias("_pos"))
    winners = (
        ranked.filter(pl.col("_valid"))
        .group_by(key, maintain_order=True)
        .first()
        .select(
            *key,
            pl.col("value").alias("_win_value"),
            pl.col(SOURCE_FILE).alias("_win_file"),
            pl.col(LINE).alias("_win_line"),
            pl.col("_pos").alias("_win_pos"),
        )
    )
    joined = ranked.join(winners, on=key, how="left", maintain_order="left")
    conflict = pl.col("_valid") & (pl.col("_pos") != pl.col("_win_pos")) & (pl.col("value") != pl.col("_win_value"))
    rule = (
        pl.when(pl.col("value").is_null())
        .then(pl.lit("missing_value"))
        .when(~pl.col("value").is_finite())
        .then(pl.lit("non_finite_value"))
        .when(conflict)
        .then(pl.lit("conflicting_duplicate"))
    )
    detail = (
        pl.when(pl.col("value").is_null())
        .then(pl.lit("value: missing"))
        .when(~pl.col("value").is_finite())
        .then(pl.format("value: not finite ({})", pl.col("value")))
        .when(conflict)
        .then(
            pl.format(
                "value {} conflicts with {} from {} line {} (the most recently modified file wins)",
                pl.col("value"),
                pl.col("_win_value"),
                pl.col("_win_file"),
                pl.col("_win_line"),
            )
        )
    )
    return joined.with_columns(rule.alias(REJECT), detail.alias(REJECT_DETAIL)).drop(
        "_valid", "_pos", "_win_value", "_win_file", "_win_line", "_win_pos"
    )


def normalise_points(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Landing rows → (accepted points, quarantine, cleansing summary); rows in = accepted + quarantined."""
    result = run_cleansing(rows.drop(MTIME), BUSINESS, CONTRACT, flag_telemetry_rows)
    accepted = result.accepted.select(list(SCHEMA)).sort("host", "metric", "timestamp")
    quarantine = (
        result.quarantine.sort(PARTITION_DATE, SOURCE_FILE, LINE)
        if result.quarantine.height
        else result.quarantine.cast(pl.Schema(quarantine_schema(BUSINESS)))
    )
    return accepted, quarantine, {"result": result}


# --------------------------------------------------------------------------------------------------------------
# the asset

VERSION = code_version("1", CONTRACT.version, flag_telemetry_rows, read_landing_files, type_records, rows_for_days)


def _lake_base(context: dg.AssetExecutionContext) -> str:
    lake = getattr(context.resources, "io_manager", None)
    base = getattr(lake, "base_path", None)
    if not base:
        raise RuntimeError("telemetry/points keeps its landing index in the lake: the io_manager has no base_path")
    return str(base)


def _reasons_markdown(quarantine: pl.DataFrame, limit: int = 15) -> str:
    if quarantine.height == 0:
        return "_no rows quarantined_"
    counts = quarantine.group_by("_stage", "_rule").len().sort("len", descending=True)
    lines = ["| stage | rule | rows |", "|---|---|---:|"]
    lines += [f"| {s} | {r} | {n} |" for s, r, n in counts.head(limit).iter_rows()]
    return "\n".join(lines)


@policy.multi_asset(
    name="telemetry__points",
    outs={
        "accepted": policy.asset_out(
            DAILY,
            key=KEY,
            description="Telemetry points: typed, deduplicated and sorted (host, metric, timestamp, value).",
            group_name="telemetry",
            code_version=VERSION,
            automation_condition=AUTOMATION,
            metadata={
                PARTITION_COLUMN: "day",
                "contract": CONTRACT.name,
                "contract_version": CONTRACT.version,
                "contract_owner": CONTRACT.owner,
                "dagster/column_schema": CONTRACT.table_schema(),
            },
        ),
        "quarantine": policy.asset_out(
            DAILY,
            key=QUARANTINE_KEY,
            description="Telemetry rows rejected with stage, rule and reason (parse errors, duplicates, conflicts).",
            group_name="telemetry",
            code_version=VERSION,
            io_manager_key=QUARANTINE_IO_MANAGER,
            automation_condition=AUTOMATION,
            metadata={PARTITION_COLUMN: PARTITION_DATE},
            kinds={"parquet", "quarantine"},
        ),
    },
    deps=[LANDING_KEY],
    partitions_def=DAILY,
    check_specs=contract_check_specs(KEY, CONTRACT),
    description="Landing telemetry CSVs of the day(s) → typed, deduplicated points (+ quarantine).",
)
def points(context: dg.AssetExecutionContext, landing: LandingZone) -> Iterator[Any]:
    days = partition_days(context)
    location = index_path(_lake_base(context))
    scan = refresh_index(landing, read_index(location), days)
    write_index(scan.index, location)
    rows, wanted = rows_for_days(landing, scan, days)
    accepted, quarantine, extra = normalise_points(rows)
    result = extra["result"]
    keys = list(context.partition_keys)
    rows_by_day = _count_by_day(rows, "day", keys)
    quarantined_by_day = _count_by_day(quarantine, PARTITION_DATE, keys)
    rates = {k: quarantined_by_day[k] / rows_by_day[k] if rows_by_day[k] else 0.0 for k in keys}
    notes = [f"{r.path}: {'; '.join(r.notes)}" for r in scan.skipped]
    yield dg.Output(
        accepted,
        output_name="accepted",
        metadata={
            "contract_version": CONTRACT.version,
            "rows_in": result.rows_in,
            "accepted_rows": accepted.height,
            "rejected_rows": quarantine.height,
            "streams": accepted.select("host", "metric").n_unique() if accepted.height else 0,
            "landing_files": len(scan.files),
            "files_read": len(wanted),
            "files_reindexed": len(scan.reread),
            "files_found_through_index": len(set(wanted) - set(scan.reread)),
            "landing_index": dg.MetadataValue.path(str(location)),
            "skipped_entries": dg.MetadataValue.md("\n".join(f"- {n}" for n in notes[:30]) or "_none_"),
            "quarantine_reasons": dg.MetadataValue.md(_reasons_markdown(quarantine)),
        },
    )
    yield dg.Output(quarantine, output_name="quarantine", metadata={"rows_quarantined": quarantine.height})
    yield from contract_check_results(
        asset_key=KEY,
        contract=CONTRACT,
        rows_in=result.rows_in,
        rule_counts=result.rule_counts,
        stage_counts=result.stage_counts,
        cleansing_counts=result.cleansing_counts,
        partitions=keys,
        partition_rates=rates,
        quarantine_location=_quarantine_location(context, keys),
        quarantine_view="telemetry.points_quarantine",
        accepted=accepted.height,
    )


def _quarantine_location(context: dg.AssetExecutionContext, keys: list[str]) -> str:
    base = getattr(getattr(context.resources, QUARANTINE_IO_MANAGER, None), "base_path", "quarantine")
    name = f"{keys[0]}.parquet" if len(keys) == 1 else f"{{{keys[0]}…{keys[-1]}}}.parquet"
    return f"{base}/telemetry/points_quarantine/{name}"


def _count_by_day(frame: pl.DataFrame, column: str, keys: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(keys, 0)
    if frame.height:
        for day, n in frame.group_by(column).len().iter_rows():
            if day is not None and day.isoformat() in counts:
                counts[day.isoformat()] = int(n)
    return counts


landing_telemetry = dg.AssetSpec(
    LANDING_KEY,
    description="Files arriving in landing/telemetry/<host>/<metric>/*.csv (read only; never modified).",
    group_name="telemetry",
    kinds={"file"},
    owners=list(policy.OWNERS),
)
