"""Module health: how every module has been doing, from the instance's own records.

Per asset: recent runtimes (step durations), runs that succeeded or failed, rows written, the
trend of its rejected-row rate (error-rate check), and its checks failing right now. The status
column says which modules need a look: `failing` (last run failed or an ERROR check fails),
`degrading` (rejected rate more than doubling, or the last runtime over twice the median),
`warning` (a WARN check fails), else `ok`.
"""

import base64
import datetime as dt
import io
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import dataframely as dy
import matplotlib
import polars as pl

from intelligence.contracts import Contract
from intelligence.modules import module

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RECENT = 20  # materializations per asset looked at
RUN_WINDOW = dt.timedelta(days=30)
STATUSES = ["ok", "warning", "degrading", "failing", "never_run"]


class ModuleHealth(dy.Schema):
    asset = dy.String(primary_key=True)
    group = dy.String(nullable=True)
    materializations = dy.Int64(nullable=False, min=0)
    last_materialized = dy.Datetime(nullable=True, time_zone="UTC")
    last_runtime_s = dy.Float64(nullable=True, min=0)
    median_runtime_s = dy.Float64(nullable=True, min=0)
    runs_succeeded = dy.Int64(nullable=False, min=0)
    runs_failed = dy.Int64(nullable=False, min=0)
    last_rows = dy.Int64(nullable=True)
    error_rate_latest = dy.Float64(nullable=True, min=0, max=1)
    error_rate_previous = dy.Float64(nullable=True, min=0, max=1, description="Mean of the earlier evaluations.")
    checks_failing = dy.String(nullable=True, description="Checks whose latest evaluation failed (severity).")
    status = dy.Enum(STATUSES, nullable=False)


CONTRACT = Contract(
    schema=ModuleHealth,
    version="1.0.0",
    owner="team:platform",
    description="One row per asset: runtimes, outcomes, rows, rejected-rate trend, failing checks, status.",
)


def _value(metadata: Mapping[str, Any], key: str) -> Any:
    item = metadata.get(key)
    return getattr(item, "value", item)


def _run_outcomes(instance: dg.DagsterInstance, key: dg.AssetKey, since: dt.datetime) -> dict[str, int]:
    """Runs that planned to materialize the asset since `since`: how many succeeded, failed, and the last."""
    planned = instance.fetch_planned_materializations(dg.AssetRecordsFilter(asset_key=key), limit=200).records
    run_ids = sorted({r.event_log_entry.run_id for r in planned if r.timestamp >= since.timestamp()})
    outcome = {"ok": 0, "failed": 0, "last_failed": 0}
    if not run_ids:
        return outcome
    runs = instance.get_runs(filters=dg.RunsFilter(run_ids=run_ids))
    finished = [r for r in runs if r.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)]
    for run in finished:
        outcome["failed" if run.status == dg.DagsterRunStatus.FAILURE else "ok"] += 1
    # `get_runs` lists the newest run first.
    outcome["last_failed"] = int(bool(finished) and finished[0].status == dg.DagsterRunStatus.FAILURE)
    return outcome


def _latest_checks(instance: dg.DagsterInstance, run_ids: Sequence[str], key: dg.AssetKey) -> dict[str, Any]:
    """The latest evaluation of each check of the asset, from the runs that materialized it."""
    latest: dict[str, Any] = {}
    for run_id in run_ids:  # newest first: keep the first evaluation seen per check
        events = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
        for record in reversed(events):
            data = (
                record.event_log_entry.dagster_event.event_specific_data
                if record.event_log_entry.dagster_event
                else None
            )
            if isinstance(data, dg.AssetCheckEvaluation) and data.asset_key == key and data.check_name not in latest:
                latest[data.check_name] = data
    return latest


def collect_health(
    instance: dg.DagsterInstance,
    assets: Sequence[tuple[dg.AssetKey, str | None]],
    now: dt.datetime,
) -> pl.DataFrame:
    """One row per asset, from materialization events, run records and check evaluations."""
    rows = []
    for key, group in assets:
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=RECENT).records
        runtimes: list[float] = []
        step_cache: dict[tuple[str, str], float] = {}
        for record in records:
            entry = record.event_log_entry
            if entry.step_key is None:
                continue
            cache_key = (entry.run_id, entry.step_key)
            if cache_key not in step_cache:
                stats = instance.get_run_step_stats(entry.run_id, step_keys=[entry.step_key])
                if stats and stats[0].start_time and stats[0].end_time:
                    step_cache[cache_key] = stats[0].end_time - stats[0].start_time
            if cache_key in step_cache:
                runtimes.append(step_cache[cache_key])
        latest = records[0] if records else None
        metadata = latest.asset_materialization.metadata if latest and latest.asset_materialization else {}
        failing: list[str] = []
        severities: set[str] = set()
        recent_runs = list(dict.fromkeys(r.event_log_entry.run_id for r in records))[:5]
        for name, evaluation in sorted(_latest_checks(instance, recent_runs, key).items()):
            if not evaluation.passed:
                failing.append(f"{name} ({evaluation.severity.value})")
                severities.add(evaluation.severity.value)
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, "error_rate"), limit=10
        )
        rates = [
            float(_value(r.evaluation.metadata or {}, "error_rate") or 0.0)
            for r in history
            if isinstance(r.evaluation, dg.AssetCheckEvaluation)
        ]
        outcome = _run_outcomes(instance, key, now - RUN_WINDOW)
        latest_rate = rates[0] if rates else None
        previous_rate = statistics.fmean(rates[1:]) if len(rates) > 1 else None
        median_runtime = statistics.median(runtimes) if runtimes else None
        if not records and not outcome["failed"]:
            status = "never_run"
        elif outcome["last_failed"] or "ERROR" in severities:
            status = "failing"
        elif (latest_rate is not None and previous_rate is not None and latest_rate > 2 * previous_rate + 0.01) or (
            runtimes and median_runtime and runtimes[0] > 2 * median_runtime + 1
        ):
            status = "degrading"
        elif "WARN" in severities:
            status = "warning"
        else:
            status = "ok"
        rows.append(
            {
                "asset": key.to_user_string(),
                "group": group,
                "materializations": len(records),
                "last_materialized": dt.datetime.fromtimestamp(latest.timestamp, dt.UTC) if latest else None,
                "last_runtime_s": runtimes[0] if runtimes else None,
                "median_runtime_s": median_runtime,
                "runs_succeeded": outcome["ok"],
                "runs_failed": outcome["failed"],
                "last_rows": _value(metadata, "dagster/row_count"),
                "error_rate_latest": latest_rate,
                "error_rate_previous": previous_rate,
                "checks_failing": ", ".join(failing) or None,
                "status": status,
            }
        )
    schema = {name: col.dtype for name, col in ModuleHealth.columns().items()}
    return pl.DataFrame(rows, schema={**schema, "status": pl.String}, orient="row")


def catalog(context: dg.AssetExecutionContext) -> list[tuple[dg.AssetKey, str | None]]:
    """Every module: from the code location when the run has one (webserver, daemon, CLI), else what
    the instance has recorded (in-process runs have no repository)."""
    try:
        graph = context.repository_def.asset_graph
        keys = [(k, graph.get(k).group_name) for k in graph.materializable_asset_keys]
    except Exception:
        keys = [(k, k.path[0]) for k in context.instance.get_asset_keys()]
    mine = [(k, g) for k, g in keys if k.path[0] != "platform"]
    return sorted(mine, key=lambda item: item[0].to_user_string())


def health_chart(frame: pl.DataFrame) -> bytes:
    shown = frame.filter(pl.col("materializations") > 0).sort("asset")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    names = shown["asset"].to_list()
    colors = {
        "ok": "#2f9e44",
        "warning": "#fab005",
        "degrading": "#f08c00",
        "failing": "#e03131",
        "never_run": "#adb5bd",
    }
    top.bar(names, shown["median_runtime_s"].fill_null(0).to_list(), color=[colors[s] for s in shown["status"]])
    top.set_ylabel("median runtime (s)")
    top.set_title("Module health (colour = status)")
    bottom.bar(names, shown["error_rate_latest"].fill_null(0).to_list(), color="#1c7ed6", label="latest")
    bottom.plot(names, shown["error_rate_previous"].fill_null(0).to_list(), "k_", markersize=14, label="earlier mean")
    bottom.set_ylabel("rejected-row rate")
    bottom.legend()
    plt.setp(bottom.get_xticklabels(), rotation=60, ha="right", fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


@module(
    key=["platform", "module_health"],
    contract=CONTRACT,
    automation_condition=dg.AutomationCondition.on_cron("0 * * * *"),
)
def module_health(context: dg.AssetExecutionContext) -> tuple[pl.DataFrame, dict[str, object]]:
    """Per module: recent runtimes, run outcomes, rows, rejected-rate trend and failing checks, from the instance."""
    frame = collect_health(context.instance, catalog(context), dt.datetime.now(dt.UTC))
    chart = base64.b64encode(health_chart(frame)).decode()
    attention = frame.filter(pl.col("status").is_in(["failing", "degrading"]))
    lines = ["| module | status | checks failing | rejected (latest / earlier) |", "|---|---|---|---|"]
    for row in attention.iter_rows(named=True):
        latest = row["error_rate_latest"]
        earlier = row["error_rate_previous"]
        lines.append(
            f"| {row['asset']} | {row['status']} | {row['checks_failing'] or ''} | "
            f"{'' if latest is None else f'{latest:.1%}'} / {'' if earlier is None else f'{earlier:.1%}'} |"
        )
    summary = "\n".join(lines) if attention.height else "_every module is healthy_"
    return frame, {
        "modules": frame.height,
        "failing": frame.filter(pl.col("status") == "failing").height,
        "degrading": frame.filter(pl.col("status") == "degrading").height,
        "needs_attention": dg.MetadataValue.md(summary),
        "chart": dg.MetadataValue.md(f"![module health](data:image/png;base64,{chart})"),
    }
