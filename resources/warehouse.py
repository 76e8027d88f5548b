"""The DuckDB warehouse: SQL views over the lake, plus the platform's small state tables.

DuckDB allows one writing process per file, and a reader cannot open the file while another
process writes. So every write goes through `write()`, which serialises writers across processes
with an OS file lock (beside the pool named `duckdb`, limit 1, which keeps writer steps from
running at once) and retries briefly when an outside process (a user's DuckDB shell) holds the
lock. Readers use `read()`, which opens the file read-only.
"""

from __future__ import annotations

import fcntl
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

LOCK_WAIT_SECONDS = 60.0
_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


def sql_identifier(name: str) -> str:
    """A safe, quoted SQL identifier made from an asset key part."""
    cleaned = _IDENT.sub("_", name).strip("_") or "_"
    return '"' + cleaned.replace('"', "") + '"'


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text or "being used" in text


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file `warehouse.duckdb`: views over the lake for SQL users, and state tables."""

    path: str
    lock_wait_seconds: float = LOCK_WAIT_SECONDS

    @property
    def file(self) -> Path:
        return Path(self.path).expanduser().resolve()

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_wait_seconds
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.file), read_only=read_only)
            except duckdb.Error as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection, held by one process at a time."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.file.with_name(self.file.name + ".writer-lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                con = self._connect(read_only=False)
                try:
                    yield con
                finally:
                    con.close()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection. Raises FileNotFoundError if the warehouse does not exist yet."""
        if not self.file.exists():
            raise FileNotFoundError(f"warehouse {self.file} does not exist yet")
        con = self._connect(read_only=True)
        try:
            yield con
        finally:
            con.close()

    def ensure_view(self, key_path: tuple[str, ...] | list[str], source_sql: str) -> bool:
        """Create or replace the view for an asset key if it is missing or stale. True if written."""
        schema, view = view_name(key_path)
        select = f"SELECT * FROM {source_sql}"
        if self.file.exists():
            with self.read() as con:
                found = con.execute(
                    "SELECT comment FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
                    [schema.strip('"'), view.strip('"')],
                ).fetchall()
            if found and found[0][0] == source_sql:
                return False
        with self.write() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"CREATE OR REPLACE VIEW {schema}.{view} AS {select}")
            # DuckDB keeps a view's SQL re-rendered (`x = true` becomes `(x = true)`), so the source as
            # given is kept in the view's comment to recognise an unchanged view next time.
            con.execute(f"COMMENT ON VIEW {schema}.{view} IS {sql_string(source_sql)}")
        return True

    def views(self) -> list[tuple[str, str]]:
        if not self.file.exists():
            return []
        with self.read() as con:
            rows = con.execute(
                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1, 2"
            ).fetchall()
        return [(str(s), str(v)) for s, v in rows]


def view_name(key_path: tuple[str, ...] | list[str]) -> tuple[str, str]:
    """Asset key ["marketing", "cleansed_ads"] → schema "marketing", view "cleansed_ads"."""
    parts = list(key_path)
    if len(parts) == 1:
        return sql_identifier("main"), sql_identifier(parts[0])
    return sql_identifier(parts[0]), sql_identifier("__".join(parts[1:]))
