"""Modules: one file per module, grouped by domain. Pure polars functions plus thin Dagster glue."""
