"""The DuckDB warehouse resource, on real DuckDB files and real processes."""

import itertools
import multiprocessing as mp
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from resources.warehouse import Warehouse, sql_identifier, sql_string, view_name

# Not fork: the parent holds polars/duckdb thread pools. A fork server imports dagster once for all children.
PROCESSES = mp.get_context("forkserver")
PROCESSES.set_forkserver_preload(["resources.warehouse", "polars", "duckdb", "pytest"])


def parquet(path: Path, rows: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"id": list(range(rows)), "day": ["2024-01-01"] * rows}).write_parquet(path)
    return path


def lake_source(folder: Path) -> str:
    """The exact source SQL the lake IO manager registers for a partitioned asset."""
    return f"read_parquet({sql_string(str(folder / '*.parquet'))}, union_by_name = true)"


def count(warehouse: Warehouse, relation: str) -> int:
    with warehouse.read() as con:
        row = con.execute(f"select count(*) from {relation}").fetchone()
    assert row is not None
    return int(row[0])


# -- views ------------------------------------------------------------------------------------


@pytest.mark.parametrize("partitioned", [False, True])
def test_ensure_view_creates_once_then_is_idempotent(tmp_path: Path, partitioned: bool) -> None:
    warehouse = Warehouse(path=str(tmp_path / "warehouse.duckdb"))
    if partitioned:
        parquet(tmp_path / "lake" / "clicks" / "2024-01-01.parquet", 3)
        parquet(tmp_path / "lake" / "clicks" / "2024-01-02.parquet", 4)
        source = lake_source(tmp_path / "lake" / "clicks")
    else:
        source = f"read_parquet({sql_string(str(parquet(tmp_path / 'lake' / 'clicks.parquet', 7)))})"
    assert not warehouse.file.exists()
    assert warehouse.ensure_view(["marketing", "clicks"], source) is True
    assert count(warehouse, "marketing.clicks") == 7
    mtime = warehouse.file.stat().st_mtime_ns
    assert warehouse.ensure_view(["marketing", "clicks"], source) is False
    assert warehouse.ensure_view(("marketing", "clicks"), source) is False
    assert warehouse.file.stat().st_mtime_ns == mtime  # no write at all the second time
    assert warehouse.views() == [("marketing", "clicks")]


def test_ensure_view_recreates_when_the_source_changes(tmp_path: Path) -> None:
    warehouse = Warehouse(path=str(tmp_path / "warehouse.duckdb"))
    old = parquet(tmp_path / "v1" / "clicks.parquet", 2)
    new = parquet(tmp_path / "v2" / "clicks.parquet", 5)
    assert warehouse.ensure_view(["clicks"], f"read_parquet({sql_string(str(old))})") is True
    assert count(warehouse, "main.clicks") == 2
    assert warehouse.ensure_view(["clicks"], f"read_parquet({sql_string(str(new))})") is True
    assert count(warehouse, "main.clicks") == 5
    assert warehouse.ensure_view(["clicks"], f"read_parquet({sql_string(str(new))})") is False
    # A source whose text contains the old one is still a different source.
    parquet(tmp_path / "v2" / "more.parquet", 1)
    wider = lake_source(tmp_path / "v2")
    assert warehouse.ensure_view(["clicks"], wider) is True
    assert count(warehouse, "main.clicks") == 6


def test_view_names_and_quoting(tmp_path: Path) -> None:
    assert view_name(["marketing", "cleansed_ads"]) == ('"marketing"', '"cleansed_ads"')
    assert view_name(["report"]) == ('"main"', '"report"')
    assert view_name(["a", "b", "c"]) == ('"a"', '"b__c"')
    assert sql_identifier('we"ird-name; drop') == '"we_ird_name_drop"'
    assert sql_identifier("---") == '"_"'
    folder = tmp_path / "o'brien's lake"
    path = parquet(folder / "x.parquet", 3)
    warehouse = Warehouse(path=str(tmp_path / "warehouse.duckdb"))
    assert warehouse.ensure_view(["my-domain", "x.y"], f"read_parquet({sql_string(str(path))})")
    assert warehouse.views() == [("my_domain", "x_y")]
    assert count(warehouse, "my_domain.x_y") == 3


# -- reading ----------------------------------------------------------------------------------


def test_read_on_a_missing_file_raises_and_creates_nothing(tmp_path: Path) -> None:
    warehouse = Warehouse(path=str(tmp_path / "nested" / "warehouse.duckdb"))
    with pytest.raises(FileNotFoundError, match="does not exist yet"), warehouse.read():
        pass
    assert not (tmp_path / "nested").exists()
    assert warehouse.views() == []


def test_reader_while_nobody_writes(tmp_path: Path) -> None:
    warehouse = Warehouse(path=str(tmp_path / "warehouse.duckdb"))
    with warehouse.write() as con:
        con.execute("create table routing (source varchar, route varchar)")
        con.execute("insert into routing values ('ads', 'strict'), ('crm', 'standard')")
    with warehouse.read() as first, warehouse.read() as second:
        assert first.execute("select route from routing where source = 'ads'").fetchall() == [("strict",)]
        assert second.execute("select count(*) from routing").fetchall() == [(2,)]
        with pytest.raises(duckdb.Error, match="read-only"):
            first.execute("insert into routing values ('web', 'strict')")
    assert count(warehouse, "routing") == 2


# -- concurrency ------------------------------------------------------------------------------


def _writer(path: str, name: str, rows: int, hold: float, barrier: "mp.synchronize.Barrier") -> None:
    # lock_wait_seconds=0: no retry on DuckDB's own lock, so only the file lock can keep writers apart.
    warehouse = Warehouse(path=path, lock_wait_seconds=0)
    barrier.wait(60)
    for i in range(rows):
        with warehouse.write() as con:
            entered = time.time()
            con.execute("create table if not exists events (writer varchar, n integer, entered double, left_ double)")
            time.sleep(hold)  # keep the file open, as a real write step does
            con.execute("insert into events values (?, ?, ?, ?)", [name, i, entered, time.time()])


def _hold_write(path: str, seconds: float, started: "mp.synchronize.Event") -> None:
    with Warehouse(path=path).write() as con:
        con.execute("create table if not exists held (x integer)")
        con.execute("insert into held values (1)")
        started.set()
        time.sleep(seconds)


def test_concurrent_writers_from_two_processes_both_succeed(tmp_path: Path) -> None:
    path = str(tmp_path / "warehouse.duckdb")
    barrier = PROCESSES.Barrier(2)
    procs = [PROCESSES.Process(target=_writer, args=(path, name, 4, 0.05, barrier)) for name in ("a", "b")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    with Warehouse(path=path).read() as con:
        rows = con.execute("select writer, count(*), sum(n) from events group by 1 order by 1").fetchall()
        spans = con.execute("select entered, left_ from events order by entered").fetchall()
    assert rows == [("a", 4, 6), ("b", 4, 6)]
    # They took turns: no write began before the previous one had finished.
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))


def test_reader_waits_for_a_writer_in_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "warehouse.duckdb")
    started = PROCESSES.Event()
    proc = PROCESSES.Process(target=_hold_write, args=(path, 1.0, started))
    proc.start()
    try:
        assert started.wait(60)
        begun = time.monotonic()
        with Warehouse(path=path, lock_wait_seconds=30).read() as con:
            assert con.execute("select count(*) from held").fetchall() == [(1,)]
        assert time.monotonic() - begun > 0.2  # it had to wait for the writer to let go
    finally:
        proc.join(30)
    assert proc.exitcode == 0
