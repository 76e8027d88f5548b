"""The edges: lake IO manager, landing zone, DuckDB warehouse, alerts. Imports nothing of ours."""
