"""Small frame helpers the modules share."""

from collections.abc import Mapping

import polars as pl


def conform(frame: pl.LazyFrame, schema: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """Give `frame` every column of `schema` (missing ones as nulls), e.g. when no upstream partition exists."""
    present = frame.collect_schema()
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in present]
    return frame.with_columns(missing) if missing else frame
