"""The Parquet lake IO manager, on Dagster's own `UPathIOManager`.

Not dagster-polars: on polars 2 every load fails (`scan_parquet(rechunk=...)` was removed) and it
refuses an output that spans several partitions, which is exactly what a single-run backfill
produces. This one:

- stores polars `DataFrame` and `LazyFrame`; loads either, as the input annotation asks;
- keeps one file per partition: `<base>/<key path>/<partition key>.parquet`, and unpartitioned
  outputs at `<base>/<key path>.parquet`;
- writes an output that covers a partition range (single-run backfill) as one file per partition,
  split by the asset's partition column (definition metadata `partition_column`);
- loads a partition range back as one frame;
- writes atomically (temp file + rename), so a crash mid-write leaves the previous file intact;
- records `dagster/row_count` and `dagster/column_schema`;
- keeps a DuckDB view over each asset's files in the warehouse, if one is configured.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
from upath import UPath

from resources.warehouse import Warehouse, sql_string

PARTITION_COLUMN = "partition_column"


def table_schema(schema: Mapping[str, pl.DataType], descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=descriptions.get(name))
            for name, dtype in schema.items()
        ]
    )


def _is_local(path: UPath | Path) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


def _local(path: UPath | Path) -> Path:
    return Path(getattr(path, "path", str(path)))


def write_parquet_atomic(frame: pl.DataFrame | pl.LazyFrame, path: UPath | Path) -> None:
    """Write a frame so readers see either the old file or the complete new one, never a part."""
    if not _is_local(path):
        # Object stores replace an object atomically on PUT; write the bytes in one call.
        buffer = io.BytesIO()
        data = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        data.write_parquet(buffer)
        path.write_bytes(buffer.getvalue())
        return
    target = _local(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp)
        else:
            frame.write_parquet(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _wants_lazy(context: dg.InputContext) -> bool:
    typing_type = context.dagster_type.typing_type
    return typing_type is pl.LazyFrame or getattr(typing_type, "__name__", "") == "LazyFrame"


def _wants_dict(context: dg.InputContext) -> bool:
    typing_type = context.dagster_type.typing_type
    return getattr(typing_type, "__origin__", None) in (dict, Mapping)


def split_by_partition(
    frame: pl.DataFrame,
    partition_keys: list[str],
    partitions_def: dg.PartitionsDefinition,
    column: str,
) -> dict[str, pl.DataFrame]:
    """Split one frame covering several partitions into one frame per partition key.

    Time-window partitions match a Date/Datetime column by window; other partitions match a
    string column by key. Every row must land in exactly one of the given partitions.

    One pass: each row gets the index of its partition (a binary search over the window starts),
    then one `partition_by`. A filter per partition cost seconds on the frames a backfill of raw
    landing files makes (dozens of chunks of string views): each filter re-walked every chunk.
    """
    if column not in frame.columns:
        raise ValueError(
            f"cannot split a {len(partition_keys)}-partition output: it has no partition column {column!r} "
            f"(columns: {', '.join(frame.columns)})"
        )
    values = frame.get_column(column)
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        index = _window_index(values, partition_keys, partitions_def, column)
    else:
        index = values.cast(pl.String).replace_strict(
            partition_keys, list(range(len(partition_keys))), default=None, return_dtype=pl.Int64
        )
    labelled = frame.with_columns(index.alias(_PART))
    groups = labelled.partition_by(_PART, as_dict=True, include_key=False, maintain_order=True)
    empty = frame.clear()
    parts = {key: groups.get((i,), empty) for i, key in enumerate(partition_keys)}
    assigned = sum(part.height for part in parts.values())
    if assigned != frame.height:
        raise ValueError(
            f"{frame.height - assigned} of {frame.height} rows have a {column!r} outside the partitions "
            f"{partition_keys[0]}…{partition_keys[-1]} of this run; refusing to write a partial output"
        )
    return parts


_PART = "__partition_index"


def _window_index(
    values: pl.Series, partition_keys: list[str], partitions_def: dg.TimeWindowPartitionsDefinition, column: str
) -> pl.Series:
    """For each value, the position in `partition_keys` of the time window holding it (null: none does)."""
    dtype = values.dtype
    windows = [partitions_def.time_window_for_partition_key(key) for key in partition_keys]
    bounds = [(w.start.astimezone(dt.UTC), w.end.astimezone(dt.UTC)) for w in windows]
    if dtype == pl.Date:
        starts = pl.Series([b[0].date() for b in bounds], dtype=pl.Date)
        ends = pl.Series([b[1].date() for b in bounds], dtype=pl.Date)
    elif isinstance(dtype, pl.Datetime):
        # polars refuses to compare datetimes of different zones: meet the column's zone (naive means UTC)
        as_utc = pl.Datetime(dtype.time_unit, "UTC")
        starts = pl.Series([b[0] for b in bounds], dtype=as_utc)
        ends = pl.Series([b[1] for b in bounds], dtype=as_utc)
        if dtype.time_zone is None:
            starts, ends = starts.dt.replace_time_zone(None), ends.dt.replace_time_zone(None)
        else:
            starts, ends = starts.dt.convert_time_zone(dtype.time_zone), ends.dt.convert_time_zone(dtype.time_zone)
    else:
        raise TypeError(f"partition column {column!r} must be a Date or Datetime, not {dtype}")
    order = sorted(range(len(partition_keys)), key=lambda i: bounds[i][0])
    starts, ends = starts.gather(order), ends.gather(order)
    at = (starts.search_sorted(values, side="right").cast(pl.Int64) - 1).clip(lower_bound=0)
    inside = (values >= starts.gather(at)) & (values < ends.gather(at))
    positions = pl.Series(order, dtype=pl.Int64).gather(at)
    return pl.select(pl.when(inside.fill_null(False)).then(positions).otherwise(None)).to_series()


def _not_materialized(message: str) -> dg.Failure:
    """A missing upstream partition: the step fails at once with this message. Retrying cannot help (the
    asset's retry policy is for flaky connectors), and a run that waits out its retries only delays the alert."""
    return dg.Failure(description=message, allow_retries=False)


class ParquetLake(dg.UPathIOManager):
    extension = ".parquet"

    def __init__(self, base_path: UPath, warehouse: Warehouse | None = None):
        super().__init__(base_path=base_path)
        self._warehouse = warehouse

    @property
    def base_path(self) -> str:
        return str(_local(self._base_path)) if _is_local(self._base_path) else str(self._base_path)

    # -- writing -----------------------------------------------------------------------------

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if not isinstance(obj, pl.DataFrame | pl.LazyFrame):
            raise TypeError(
                f"the lake stores polars DataFrame or LazyFrame; {context.asset_key.to_user_string()} "
                f"returned {type(obj).__name__}"
            )
        write_parquet_atomic(obj, path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            self._write_partition_range(context, obj)
        else:
            if context.has_asset_partitions:
                self._check_single_partition(context, obj)
            super().handle_output(context, obj)
            path = (
                next(iter(self._get_paths_for_partitions(context).values()))
                if context.has_asset_partitions
                else self._get_path(context)
            )
            context.add_output_metadata(self._file_metadata([path]))
        self._register_view(context)

    def _check_single_partition(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        column = (context.definition_metadata or {}).get(PARTITION_COLUMN)
        partitions_def = context.asset_partitions_def
        if not column or not isinstance(obj, pl.DataFrame) or column not in obj.columns:
            return
        split_by_partition(obj, [context.asset_partition_key], partitions_def, column)

    def _write_partition_range(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        frame = obj.collect() if isinstance(obj, pl.LazyFrame) else obj
        keys = list(context.asset_partition_keys)
        column = (context.definition_metadata or {}).get(PARTITION_COLUMN)
        if not column:
            raise ValueError(
                f"{context.asset_key.to_user_string()} produced one output for {len(keys)} partitions but "
                f"declares no '{PARTITION_COLUMN}' in its metadata, so it cannot be split per partition"
            )
        parts = split_by_partition(frame, keys, context.asset_partitions_def, str(column))
        paths = self._get_paths_for_partitions(context)
        for key, part in parts.items():
            write_parquet_atomic(part, paths[key])
        context.log.info(f"wrote {len(parts)} partition files for {context.asset_key.to_user_string()}")
        metadata = self._file_metadata(list(paths.values()))
        metadata["path"] = dg.MetadataValue.path(str(next(iter(paths.values())).parent))
        metadata["partitions_written"] = len(parts)
        context.add_output_metadata(metadata)

    def _file_metadata(self, paths: list[UPath]) -> dict[str, Any]:
        rows = 0
        schema: Mapping[str, pl.DataType] = {}
        for path in paths:
            with path.open("rb") as handle:
                rows += pq.ParquetFile(handle).metadata.num_rows
        if paths:
            if _is_local(paths[0]):
                schema = pl.read_parquet_schema(_local(paths[0]))
            else:
                with paths[0].open("rb") as handle:
                    schema = pl.read_parquet_schema(handle)
        return {
            "dagster/row_count": dg.MetadataValue.int(rows),
            "dagster/column_schema": table_schema(schema),
        }

    def _register_view(self, context: dg.OutputContext) -> None:
        if self._warehouse is None or not _is_local(self._base_path):
            return
        asset_path = self._get_path_without_extension(context)
        if context.has_asset_partitions:
            source = f"read_parquet({sql_string(str(_local(asset_path) / '*.parquet'))}, union_by_name = true)"
        else:
            source = f"read_parquet({sql_string(str(_local(self._with_extension(asset_path))))})"
        try:
            if self._warehouse.ensure_view(list(context.asset_key.path), source):
                context.log.info(f"warehouse view for {context.asset_key.to_user_string()} created")
        except Exception as exc:  # the data is written; a missing view must not fail the asset
            context.log.warning(f"could not register a warehouse view: {exc}")

    # -- reading -----------------------------------------------------------------------------

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame | pl.LazyFrame:
        if not self.path_exists(path):
            raise _not_materialized(
                f"no lake file for {context.asset_key.to_user_string()} at {path}: materialize it first"
            )
        source: Any = _local(path) if _is_local(path) else path.open("rb")
        if _wants_lazy(context) and _is_local(path):
            return pl.scan_parquet(source)
        frame = pl.read_parquet(source)
        return frame.lazy() if _wants_lazy(context) else frame

    def load_partitions(self, context: dg.InputContext) -> Any:
        """Load one partition, or a range as one frame (a dict if the input is annotated as one).

        With `allow_missing_partitions` in the input metadata, partitions never materialized are
        skipped with one log line (the base class logs a warning per partition).
        """
        keys = list(context.asset_partition_keys)
        paths = self._get_paths_for_partitions(context)
        present = {key: path for key, path in paths.items() if self.path_exists(path)}
        missing = [key for key in keys if key not in present]
        name = context.asset_key.to_user_string()
        if missing:
            allowed = bool((context.definition_metadata or {}).get("allow_missing_partitions", False))
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            if not allowed:
                raise _not_materialized(f"{name}: partition(s) {shown} not in the lake; materialize it first")
            context.log.info(f"{name}: {len(present)} of {len(keys)} partitions loaded; not materialized: {shown}")
        if _wants_dict(context):
            return {key: self.load_from_path(context, present[key]) for key in keys if key in present}
        frames = [self.load_from_path(context, present[key]) for key in keys if key in present]
        if not frames:
            return pl.LazyFrame() if _wants_lazy(context) else pl.DataFrame()
        if len(frames) == 1:
            return frames[0]
        return pl.concat(cast(list[Any], frames), how="diagonal_relaxed")


class LakeIOManager(dg.ConfigurableIOManagerFactory):
    """Parquet files under `base_path` (a local folder or an fsspec URL such as s3://bucket/lake)."""

    base_path: str
    warehouse_path: str | None = None

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetLake:
        warehouse = Warehouse(path=self.warehouse_path) if self.warehouse_path else None
        return ParquetLake(UPath(self.base_path), warehouse=warehouse)
