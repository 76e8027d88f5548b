"""The Parquet lake IO manager, through real `dg.materialize` runs and real Parquet files in tmp_path."""

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resources.lake import PARTITION_COLUMN, LakeIOManager, write_parquet_atomic

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-04-01", timezone="UTC")
MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-07-01", timezone="UTC")
SINGLE_RUN = dg.BackfillPolicy.single_run()
KEY = ["marketing", "clicks"]
CLICKS_IN = {"clicks": dg.AssetIn(dg.AssetKey(KEY))}


@pytest.fixture
def ephemeral() -> dg.DagsterInstance:
    """An in-memory Dagster instance: real event log and run storage, nothing on disk."""
    return dg.DagsterInstance.ephemeral()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


def run(
    assets: list[Any],
    instance: dg.DagsterInstance,
    base: Path,
    *,
    partition_key: str | None = None,
    partition_range: tuple[str, str] | None = None,
    warehouse: Path | None = None,
    selection: list[dg.AssetKey] | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    tags = {RANGE_START: partition_range[0], RANGE_END: partition_range[1]} if partition_range else None
    io_manager = LakeIOManager(base_path=str(base), warehouse_path=str(warehouse) if warehouse else None)
    return dg.materialize(
        assets,
        instance=instance,
        resources={"io_manager": io_manager},
        partition_key=partition_key,
        tags=tags,
        selection=selection,
        raise_on_error=raise_on_error,
    )


def rows_for_day(day: dt.date, n: int = 3) -> pl.DataFrame:
    """Deterministic rows for a day: a Date column, a UTC Datetime, a naive Datetime, a value."""
    base = dt.datetime.combine(day, dt.time(0, 0))
    times = [base + dt.timedelta(hours=8 * i, minutes=i) for i in range(n)]  # 00:00, 08:01, 16:02
    return pl.DataFrame(
        {
            "day": [day] * n,
            "ts": pl.Series(times, dtype=pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "naive_ts": pl.Series(times, dtype=pl.Datetime("us")),
            "value": [day.toordinal() * 10 + i for i in range(n)],
            "label": [f"{day.isoformat()}-{i}" for i in range(n)],
        }
    )


def days_of(keys: list[str]) -> list[dt.date]:
    return [dt.date.fromisoformat(k) for k in keys]


def daily_asset(column: str | None = "day", *, produce: Callable[[list[str]], pl.DataFrame] | None = None) -> Any:
    metadata = {PARTITION_COLUMN: column} if column else {}

    @dg.asset(key=KEY, partitions_def=DAILY, backfill_policy=SINGLE_RUN, metadata=metadata)
    def clicks(context: dg.AssetExecutionContext) -> pl.DataFrame:
        keys = list(context.partition_keys)
        if produce is not None:
            return produce(keys)
        return pl.concat([rows_for_day(d) for d in days_of(keys)])

    return clicks


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def materialization(result: dg.ExecuteInProcessResult, key: list[str]) -> dg.AssetMaterialization:
    found = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
    for mat in found:
        if mat.asset_key == dg.AssetKey(key):
            return mat
    raise AssertionError(f"no materialization of {key} (saw {[m.asset_key for m in found]})")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- layout -----------------------------------------------------------------------------------


def test_unpartitioned_output_is_one_file_at_key_path(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    frame = rows_for_day(dt.date(2024, 1, 5), n=4)

    @dg.asset(key=KEY)
    def clicks() -> pl.DataFrame:
        return frame

    result = run([clicks], ephemeral, lake)
    assert result.success
    assert files_under(lake) == ["marketing/clicks.parquet"]
    assert_frame_equal(pl.read_parquet(lake / "marketing" / "clicks.parquet"), frame)


def test_daily_partition_is_one_file_per_partition_key(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    asset = daily_asset()
    run([asset], ephemeral, lake, partition_key="2024-01-02")
    run([asset], ephemeral, lake, partition_key="2024-01-04")
    assert files_under(lake) == ["marketing/clicks/2024-01-02.parquet", "marketing/clicks/2024-01-04.parquet"]
    assert_frame_equal(pl.read_parquet(lake / "marketing/clicks/2024-01-04.parquet"), rows_for_day(dt.date(2024, 1, 4)))


def test_rerunning_a_partition_replaces_it(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    version = {"n": 3}
    asset = daily_asset(produce=lambda keys: rows_for_day(days_of(keys)[0], n=version["n"]))
    run([asset], ephemeral, lake, partition_key="2024-01-02")
    version["n"] = 1
    run([asset], ephemeral, lake, partition_key="2024-01-02")
    assert pl.read_parquet(lake / "marketing/clicks/2024-01-02.parquet").height == 1
    assert files_under(lake) == ["marketing/clicks/2024-01-02.parquet"]


def test_single_partition_with_rows_of_another_day_is_refused(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    asset = daily_asset(produce=lambda keys: rows_for_day(dt.date(2024, 1, 9)))
    result = run([asset], ephemeral, lake, partition_key="2024-01-02", raise_on_error=False)
    assert not result.success
    assert "outside the partitions" in str(result.get_step_failure_events()[0].step_failure_data.error)
    assert files_under(lake) == []


def test_non_polars_output_is_a_clear_type_error(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    @dg.asset(key=KEY)
    def clicks() -> Any:
        return {"not": "a frame"}

    result = run([clicks], ephemeral, lake, raise_on_error=False)
    assert not result.success
    message = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "DataFrame or LazyFrame" in message and "dict" in message


# -- single-run backfills ---------------------------------------------------------------------


@pytest.mark.parametrize("column", ["day", "ts", "naive_ts"])
def test_range_output_is_split_into_one_file_per_partition(
    ephemeral: dg.DagsterInstance, lake: Path, column: str
) -> None:
    result = run([daily_asset(column)], ephemeral, lake, partition_range=("2024-01-02", "2024-01-04"))
    assert result.success
    assert files_under(lake) == [f"marketing/clicks/2024-01-0{d}.parquet" for d in (2, 3, 4)]
    for d in (2, 3, 4):
        day = dt.date(2024, 1, d)
        assert_frame_equal(pl.read_parquet(lake / f"marketing/clicks/{day}.parquet"), rows_for_day(day))
    mat = materialization(result, KEY)
    assert mat.metadata["dagster/row_count"].value == 9
    assert mat.metadata["partitions_written"].value == 3


def test_range_split_by_a_non_utc_datetime_column_uses_the_partition_windows(
    ephemeral: dg.DagsterInstance, lake: Path
) -> None:
    # 2024-01-02 00:30 UTC is 2024-01-01 19:30 in New York: it belongs to the UTC day 2024-01-02.
    def produce(keys: list[str]) -> pl.DataFrame:
        times = [dt.datetime(2024, 1, 2, 0, 30), dt.datetime(2024, 1, 2, 23, 59), dt.datetime(2024, 1, 3, 0, 0)]
        ts = pl.Series(times, dtype=pl.Datetime("ms")).dt.replace_time_zone("UTC")
        return pl.DataFrame({"ts": ts.dt.convert_time_zone("America/New_York"), "value": [1, 2, 3]})

    result = run([daily_asset("ts", produce=produce)], ephemeral, lake, partition_range=("2024-01-02", "2024-01-03"))
    assert result.success
    assert pl.read_parquet(lake / "marketing/clicks/2024-01-02.parquet")["value"].to_list() == [1, 2]
    assert pl.read_parquet(lake / "marketing/clicks/2024-01-03.parquet")["value"].to_list() == [3]


def test_monthly_range_output_is_split_by_month(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    @dg.asset(key=["marketing", "report"], partitions_def=MONTHLY, backfill_policy=SINGLE_RUN,
              metadata={PARTITION_COLUMN: "month"})  # fmt: skip
    def report(context: dg.AssetExecutionContext) -> pl.DataFrame:
        months = [dt.date.fromisoformat(k) for k in context.partition_keys]
        # Any day inside the month must land in that month's file, not only the 1st.
        return pl.DataFrame(
            {
                "month": [m.replace(day=d) for m in months for d in (1, 15, 28)],
                "credit": [float(m.month * 100 + d) for m in months for d in (1, 15, 28)],
            }
        )

    result = run([report], ephemeral, lake, partition_range=("2024-02-01", "2024-04-01"))
    assert result.success
    assert files_under(lake) == [f"marketing/report/2024-0{m}-01.parquet" for m in (2, 3, 4)]
    march = pl.read_parquet(lake / "marketing/report/2024-03-01.parquet")
    assert march["credit"].to_list() == [301.0, 315.0, 328.0]


@pytest.mark.parametrize("column", ["day", "ts"])
def test_range_with_rows_outside_it_fails_clearly_and_writes_nothing(
    ephemeral: dg.DagsterInstance, lake: Path, column: str
) -> None:
    def produce(keys: list[str]) -> pl.DataFrame:
        return pl.concat([rows_for_day(d) for d in days_of(keys)] + [rows_for_day(dt.date(2024, 2, 1), n=2)])

    result = run(
        [daily_asset(column, produce=produce)],
        ephemeral,
        lake,
        partition_range=("2024-01-02", "2024-01-04"),
        raise_on_error=False,
    )
    assert not result.success
    message = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "2 of 11 rows" in message and repr(column) in message and "2024-01-02" in message
    assert files_under(lake) == []


def test_range_without_partition_column_metadata_is_refused(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    result = run(
        [daily_asset(column=None)], ephemeral, lake, partition_range=("2024-01-02", "2024-01-03"), raise_on_error=False
    )
    assert not result.success
    assert "partition_column" in str(result.get_step_failure_events()[0].step_failure_data.error)
    assert files_under(lake) == []


def test_range_backfill_gives_the_same_files_as_partition_by_partition(
    ephemeral: dg.DagsterInstance, tmp_path: Path
) -> None:
    keys = ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]
    asset = daily_asset("ts")
    run([asset], ephemeral, tmp_path / "ranged", partition_range=(keys[0], keys[-1]))
    for key in keys:
        run([asset], ephemeral, tmp_path / "single", partition_key=key)
    ranged, single = tmp_path / "ranged", tmp_path / "single"
    assert files_under(ranged) == files_under(single) == [f"marketing/clicks/{k}.parquet" for k in keys]
    for name in files_under(ranged):
        assert_frame_equal(pl.read_parquet(ranged / name), pl.read_parquet(single / name))
        assert (ranged / name).read_bytes() == (single / name).read_bytes()


# -- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("annotation", [pl.DataFrame, pl.LazyFrame])
def test_downstream_range_loads_as_one_frame(ephemeral: dg.DagsterInstance, lake: Path, annotation: type) -> None:
    seen: list[Any] = []
    upstream = daily_asset()

    @dg.asset(key=["marketing", "daily_total"], partitions_def=DAILY, backfill_policy=SINGLE_RUN,
              ins={"clicks": dg.AssetIn(dg.AssetKey(KEY))}, metadata={PARTITION_COLUMN: "day"})  # fmt: skip
    def daily_total(clicks: annotation) -> pl.DataFrame:  # type: ignore[valid-type]
        seen.append(clicks)
        frame = clicks.collect() if isinstance(clicks, pl.LazyFrame) else clicks
        return frame.group_by("day").agg(pl.col("value").sum())

    run([upstream, daily_total], ephemeral, lake, partition_range=("2024-01-01", "2024-01-05"))
    assert len(seen) == 1 and type(seen[0]) is annotation
    loaded = seen[0].collect() if isinstance(seen[0], pl.LazyFrame) else seen[0]
    expected = pl.concat([rows_for_day(dt.date(2024, 1, d)) for d in range(1, 6)])
    assert_frame_equal(loaded, expected)


@pytest.mark.parametrize("annotation", [pl.DataFrame, pl.LazyFrame])
def test_single_partition_loads_as_the_annotated_type(
    ephemeral: dg.DagsterInstance, lake: Path, annotation: type
) -> None:
    seen: list[Any] = []

    @dg.asset(key=["marketing", "copy"], partitions_def=DAILY, ins=CLICKS_IN, backfill_policy=SINGLE_RUN)
    def copy(clicks: annotation) -> pl.DataFrame:  # type: ignore[valid-type]
        seen.append(clicks)
        return clicks.collect() if isinstance(clicks, pl.LazyFrame) else clicks

    run([daily_asset(), copy], ephemeral, lake, partition_key="2024-01-03")
    assert type(seen[0]) is annotation
    assert_frame_equal(pl.read_parquet(lake / "marketing/copy/2024-01-03.parquet"), rows_for_day(dt.date(2024, 1, 3)))


def test_monthly_asset_loads_its_month_of_daily_partitions(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    upstream = daily_asset()
    run([upstream], ephemeral, lake, partition_range=("2024-01-28", "2024-02-29"))

    @dg.asset(key=["marketing", "monthly"], partitions_def=MONTHLY, ins=CLICKS_IN, backfill_policy=SINGLE_RUN)
    def monthly(clicks: pl.LazyFrame) -> pl.DataFrame:
        return clicks.select(pl.len().alias("rows"), pl.col("day").min().alias("first"), pl.col("day").max()).collect()

    result = run([upstream, monthly], ephemeral, lake, partition_key="2024-02-01",
                 selection=[dg.AssetKey(["marketing", "monthly"])])  # fmt: skip
    assert result.success
    out = pl.read_parquet(lake / "marketing/monthly/2024-02-01.parquet")
    assert out.row(0) == (29 * 3, dt.date(2024, 2, 1), dt.date(2024, 2, 29))


def test_loading_a_missing_partition_says_materialize_first_and_is_not_retried(
    ephemeral: dg.DagsterInstance, lake: Path
) -> None:
    retry = dg.RetryPolicy(max_retries=3, delay=0.01)

    @dg.asset(
        key=["marketing", "copy"], partitions_def=DAILY, ins=CLICKS_IN, backfill_policy=SINGLE_RUN, retry_policy=retry
    )
    def copy(clicks: pl.DataFrame) -> pl.DataFrame:
        return clicks

    result = run([daily_asset(), copy], ephemeral, lake, partition_key="2024-01-03",
                 selection=[dg.AssetKey(["marketing", "copy"])], raise_on_error=False)  # fmt: skip
    assert not result.success
    failures = result.get_step_failure_events()
    assert len(failures) == 1
    assert "materialize it first" in str(failures[0].step_failure_data.error)
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries == []  # a missing partition does not come back by waiting


# -- LazyFrame outputs and metadata -----------------------------------------------------------


def test_lazyframe_output_is_written_and_metadata_recorded(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    @dg.asset(key=KEY, partitions_def=DAILY, backfill_policy=SINGLE_RUN, metadata={PARTITION_COLUMN: "day"})
    def clicks(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        return pl.concat([rows_for_day(d, n=5) for d in days_of(list(context.partition_keys))]).lazy()

    one = run([clicks], ephemeral, lake, partition_key="2024-01-01")
    many = run([clicks], ephemeral, lake, partition_range=("2024-01-02", "2024-01-03"))
    assert_frame_equal(
        pl.read_parquet(lake / "marketing/clicks/2024-01-01.parquet"), rows_for_day(dt.date(2024, 1, 1), 5)
    )
    assert_frame_equal(
        pl.read_parquet(lake / "marketing/clicks/2024-01-03.parquet"), rows_for_day(dt.date(2024, 1, 3), 5)
    )
    assert materialization(one, KEY).metadata["dagster/row_count"].value == 5
    assert materialization(many, KEY).metadata["dagster/row_count"].value == 10


def test_unpartitioned_lazyframe_output(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    @dg.asset(key=KEY)
    def clicks() -> pl.LazyFrame:
        return pl.LazyFrame({"x": [3, 1, 2]}).sort("x")

    result = run([clicks], ephemeral, lake)
    assert pl.read_parquet(lake / "marketing/clicks.parquet")["x"].to_list() == [1, 2, 3]
    assert materialization(result, KEY).metadata["dagster/row_count"].value == 3


def test_row_count_and_column_schema_metadata(ephemeral: dg.DagsterInstance, lake: Path) -> None:
    result = run([daily_asset()], ephemeral, lake, partition_key="2024-01-02")
    metadata = materialization(result, KEY).metadata
    assert metadata["dagster/row_count"].value == 3
    schema = metadata["dagster/column_schema"].value
    assert isinstance(schema, dg.TableSchema)
    assert [(c.name, c.type) for c in schema.columns] == [
        ("day", "Date"),
        ("ts", "Datetime(time_unit='us', time_zone='UTC')"),
        ("naive_ts", "Datetime(time_unit='us', time_zone=None)"),
        ("value", "Int64"),
        ("label", "String"),
    ]
    # The row count is also what the ephemeral stores, so the UI and schema-change checks see it.
    stored = ephemeral.get_latest_materialization_event(dg.AssetKey(KEY))
    assert stored is not None and stored.asset_materialization is not None
    assert stored.asset_materialization.metadata["dagster/row_count"].value == 3


# -- atomicity --------------------------------------------------------------------------------


class FailsMidWrite(pl.DataFrame):
    """A frame whose Parquet write leaves half a file behind and then fails."""

    def write_parquet(self, file: Any, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        Path(file).write_bytes(b"PAR1" + b"\0" * 4096)
        raise OSError("disk went away mid-write")


def failing_frames() -> dict[str, Callable[[], pl.DataFrame | pl.LazyFrame]]:
    def object_column() -> pl.DataFrame:
        return pl.DataFrame({"value": [1, 2], "blob": pl.Series([object(), object()], dtype=pl.Object)})

    def fails_mid_write() -> pl.DataFrame:
        return FailsMidWrite({"value": [1, 2, 3]})

    def lazy_fails() -> pl.LazyFrame:
        def boom(v: int) -> int:
            raise ValueError("cannot compute")

        return pl.LazyFrame({"value": [1, 2, 3]}).with_columns(pl.col("value").map_elements(boom, pl.Int64))

    return {"object_column": object_column, "fails_mid_write": fails_mid_write, "lazy_fails": lazy_fails}


@pytest.mark.parametrize("failure", list(failing_frames()))
def test_failed_write_leaves_old_file_byte_identical(tmp_path: Path, failure: str) -> None:
    target = tmp_path / "lake" / "clicks.parquet"
    write_parquet_atomic(rows_for_day(dt.date(2024, 1, 1)), target)
    before, mtime = target.read_bytes(), target.stat().st_mtime_ns
    with pytest.raises(Exception):  # noqa: B017 - each failure raises its own kind
        write_parquet_atomic(failing_frames()[failure](), target)
    assert target.read_bytes() == before and target.stat().st_mtime_ns == mtime
    assert os.listdir(target.parent) == ["clicks.parquet"]  # no temp files left behind


@pytest.mark.parametrize("failure", ["object_column", "fails_mid_write"])
def test_failed_materialization_leaves_old_partition_intact(
    ephemeral: dg.DagsterInstance, lake: Path, failure: str
) -> None:
    state = {"fail": False}

    def produce(keys: list[str]) -> pl.DataFrame:
        return failing_frames()[failure]() if state["fail"] else rows_for_day(days_of(keys)[0])

    asset = daily_asset(column=None, produce=produce)
    run([asset], ephemeral, lake, partition_key="2024-01-02")
    target = lake / "marketing/clicks/2024-01-02.parquet"
    before = sha(target)
    state["fail"] = True
    result = run([asset], ephemeral, lake, partition_key="2024-01-02", raise_on_error=False)
    assert not result.success
    assert sha(target) == before
    assert files_under(lake) == ["marketing/clicks/2024-01-02.parquet"]


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    import polars as pl
    from resources.lake import write_parquet_atomic

    n = int(sys.argv[2])
    frame = pl.DataFrame({"a": np.random.default_rng(1).random(n), "b": np.arange(n)})
    print("ready", flush=True)
    write_parquet_atomic(frame, Path(sys.argv[1]))
    print("done", flush=True)
    """
)


def test_process_killed_mid_write_leaves_old_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "lake" / "big.parquet"
    old = pl.DataFrame({"a": [0.5], "b": [1]})
    write_parquet_atomic(old, target)
    before = target.read_bytes()
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(target), "20000000"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]:
            assert proc.poll() is None, "the writer finished before it could be killed; use a larger frame"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert target.read_bytes() == before
    assert_frame_equal(pl.read_parquet(target), old)
    # A killed writer can leave its hidden temp file, but never under a name the lake reads.
    assert [p.name for p in target.parent.glob("*.parquet")] == ["big.parquet"]


# -- warehouse views --------------------------------------------------------------------------


def test_materializing_registers_a_warehouse_view(ephemeral: dg.DagsterInstance, tmp_path: Path) -> None:
    lake, warehouse = tmp_path / "lake", tmp_path / "warehouse.duckdb"

    @dg.asset(key=["marketing", "summary"])
    def summary() -> pl.DataFrame:
        return pl.DataFrame({"channel": ["a", "b"], "n": [1, 2]})

    asset = daily_asset()
    run([asset, summary], ephemeral, lake, partition_range=("2024-01-01", "2024-01-04"), warehouse=warehouse,
        selection=[dg.AssetKey(KEY)])  # fmt: skip
    run([asset, summary], ephemeral, lake, warehouse=warehouse, selection=[dg.AssetKey(["marketing", "summary"])])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from marketing.clicks").fetchone() == (12,)
        assert con.execute("select count(*) from marketing.summary").fetchone() == (2,)
    # A later partition shows up in the same view without re-registering anything by hand.
    run([asset], ephemeral, lake, partition_key="2024-01-09", warehouse=warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from marketing.clicks").fetchone() == (15,)
        assert con.execute("select max(day) from marketing.clicks").fetchone() == (dt.date(2024, 1, 9),)
