"""What telemetry metric names mean, shared by the telemetry modules (health, events, incidents, diagnostics).

`cpu`, `memory`, `latency`, `errors` and `requests` (and common spellings) have a *role* that the correlation
of incidents understands; any other metric is a generic stream. For a metric whose name says "up is bad"
(latency, errors, memory, timeouts, …) a downward move counts less, as in the detector.
"""

from __future__ import annotations

import re

import dataframely as dy
import polars as pl

ROLES: dict[str, str] = {
    "cpu": r"^(cpu|processor|load)",
    "memory": r"^(mem|memory|rss|heap)",
    "latency": r"(latenc|response_time|duration|p9\d)",
    "errors": r"(error|err_|5xx|fail|exception)",
    "requests": r"^(request|req|rps|qps|throughput|traffic|hits)",
}
ROLE_EXPR_ORDER = ("errors", "latency", "memory", "cpu", "requests")
UP_IS_BAD = re.compile(r"latenc|mem|error|err_|fail|timeout|5xx|4xx|queue|wait|retr|reject|exception", re.I)
DOWN_WEIGHT_UP_IS_BAD = 0.3


def role_of(metric: str) -> str:
    """The role a metric name plays in correlation (`cpu`, `memory`, …), or `other`."""
    name = metric.lower()
    for role in ROLE_EXPR_ORDER:
        if re.search(ROLES[role], name):
            return role
    return "other"


def role_expr(column: str = "metric") -> pl.Expr:
    name = pl.col(column).str.to_lowercase()
    expr: pl.Expr = pl.lit("other")
    for role in reversed(ROLE_EXPR_ORDER):
        expr = pl.when(name.str.contains(ROLES[role])).then(pl.lit(role)).otherwise(expr)
    return expr


def up_is_bad_expr(column: str = "metric") -> pl.Expr:
    return pl.col(column).str.contains(f"(?i){UP_IS_BAD.pattern}")


def trusted_deviation(deviation: str = "deviation", scale: str = "scale", baseline: str = "baseline") -> pl.Expr:
    """The detector's deviation where its noise scale is real (not the warm-up floor of a stream without history)."""
    ok = pl.col(scale) > 1e-6 * (1.0 + pl.col(baseline).abs())
    return pl.when(ok & pl.col(deviation).is_finite()).then(pl.col(deviation))


def effective_deviation(signed: pl.Expr, metric: str = "metric") -> pl.Expr:
    """|deviation| in noise units, with downward moves of up-is-bad metrics counted less."""
    return pl.when(up_is_bad_expr(metric) & (signed < 0)).then(-signed * DOWN_WEIGHT_UP_IS_BAD).otherwise(signed.abs())


def number(description: str = "", nullable: bool = True) -> dy.Float64:
    """A float column of a telemetry contract whose finiteness one rule of the schema checks for all columns.

    dataframely adds a nan and an inf rule per float column, and each rule is a check on every run; the
    telemetry contracts check their numbers together (`finite_numbers`) to keep the event log small.
    """
    return dy.Float64(nullable=nullable, allow_inf=True, allow_nan=True, description=description or None)


def finite(*columns: str) -> pl.Expr:
    """True where every given column is finite or null."""
    return pl.all_horizontal([pl.col(c).is_finite().fill_null(True) for c in columns])
