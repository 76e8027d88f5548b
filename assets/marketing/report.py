"""The monthly attribution report: HTML with charts, ROAS and a data-quality section, and a UI summary.

Written to `reports/<YYYY-MM>/attribution.html` (charts as PNG beside it and inline), and shown in the
Dagster UI as the materialization's markdown summary with the headline chart.
"""

import base64
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import jinja2
import matplotlib
import polars as pl

from intelligence import policy
from intelligence.partitions import MONTHLY, lookback, next_month
from resources.reports import ReportStore
from resources.warehouse import Warehouse

matplotlib.use("Agg")  # render to files; no display on servers
import matplotlib.pyplot as plt

SOURCES = ("ads", "social", "crm", "web", "email")
HEADLINE_MODEL = "markov"
TREND_MONTHS = 6
TEMPLATES = Path(__file__).parent / "templates"


def credit_table(attribution: pl.DataFrame, month: dt.date) -> pl.DataFrame:
    """channel × model conversions for `month`."""
    this = attribution.filter(pl.col("month") == month).with_columns(pl.col("model").cast(pl.String))
    if this.height == 0:
        return pl.DataFrame({"channel": []}, schema={"channel": pl.String})
    return this.pivot(on="model", index="channel", values="conversions").fill_null(0.0).sort("channel")


def roas_table(attribution: pl.DataFrame, spend: pl.DataFrame, month: dt.date) -> pl.DataFrame:
    """Per channel: spend and, per model, attributed value / spend (null without spend)."""
    this = attribution.filter(pl.col("month") == month).with_columns(pl.col("model").cast(pl.String))
    value = this.pivot(on="model", index="channel", values="value").fill_null(0.0) if this.height else pl.DataFrame()
    if value.height == 0:
        return pl.DataFrame(schema={"channel": pl.String, "spend": pl.Float64})
    table = value.join(spend, on="channel", how="left").with_columns(pl.col("spend").fill_null(0.0))
    models = [c for c in value.columns if c != "channel"]
    return table.select(
        "channel",
        "spend",
        *[pl.when(pl.col("spend") > 0).then(pl.col(m) / pl.col("spend")).alias(m) for m in models],
    ).sort("channel")


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def credit_chart(credit: pl.DataFrame) -> bytes:
    models = [c for c in credit.columns if c != "channel"]
    channels = credit["channel"].to_list()
    fig, ax = plt.subplots(figsize=(10, 4.2))
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        ax.bar([x + i * width for x in range(len(channels))], credit[model].to_list(), width, label=model)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(channels))], channels, rotation=20)
    ax.set_ylabel("conversions credited")
    ax.legend(ncol=4, fontsize=8)
    ax.set_title("Credit by channel and model")
    return _png(fig)


def roas_chart(attribution: pl.DataFrame, spend: pl.DataFrame, month: dt.date, model: str) -> bytes:
    this = attribution.filter((pl.col("month") == month) & (pl.col("model").cast(pl.String) == model))
    table = (
        this.select("channel", "value")
        .join(spend, on="channel", how="full", coalesce=True)
        .fill_null(0.0)
        .sort("channel")
    )
    channels = table["channel"].to_list()
    fig, ax = plt.subplots(figsize=(10, 4))
    xs = range(len(channels))
    ax.bar([x - 0.2 for x in xs], table["spend"].to_list(), 0.4, label="spend (USD)", color="#9aa5b1")
    ax.bar([x + 0.2 for x in xs], table["value"].to_list(), 0.4, label=f"attributed value ({model})", color="#2186eb")
    ax.set_xticks(list(xs), channels, rotation=20)
    ax.legend()
    ax.set_title("Spend vs attributed value")
    return _png(fig)


def trend_chart(attribution: pl.DataFrame, model: str) -> bytes | None:
    data = attribution.filter(pl.col("model").cast(pl.String) == model)
    if data["month"].n_unique() < 2:
        return None
    table = data.pivot(on="channel", index="month", values="conversions").fill_null(0.0).sort("month")
    fig, ax = plt.subplots(figsize=(10, 4))
    for channel in [c for c in table.columns if c != "month"]:
        ax.plot(table["month"].to_list(), table[channel].to_list(), marker="o", label=channel)
    ax.set_ylabel("conversions credited")
    ax.legend(ncol=4, fontsize=8)
    ax.set_title(f"Conversions per channel by month ({model})")
    fig.autofmt_xdate()
    return _png(fig)


def quality_rows(
    instance: dg.DagsterInstance, month: dt.date, warn_rate: float, error_rate: float
) -> list[dict[str, Any]]:
    """Per source: the latest materialization of each day of the month, summed, and the days with none (a
    source that never delivered them: the month's attribution was computed without them)."""
    days = []
    day = month
    while day < next_month(month):
        days.append(day.isoformat())
        day += dt.timedelta(days=1)
    rows = []
    for source in SOURCES:
        key = dg.AssetKey(["marketing", f"cleansed_{source}"])
        latest: dict[str, Mapping[str, Any]] = {}
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=days), limit=10_000, ascending=True
        )
        for record in result.records:
            event = record.asset_materialization
            if event is not None and event.partition:
                latest[event.partition] = {k: getattr(v, "value", v) for k, v in event.metadata.items()}
        rows_in = sum(int(m.get("rows_in", 0)) for m in latest.values())
        accepted = sum(int(m.get("accepted_rows", 0)) for m in latest.values())
        rates = [float(m.get("error_rate", 0.0)) for m in latest.values()]
        rows.append(
            {
                "source": source,
                "days": len(latest),
                "days_in_month": len(days),
                "missing_days": sorted(set(days) - set(latest)),
                "rows_in": rows_in,
                "accepted": accepted,
                "rejected": rows_in - accepted,
                "rate": (rows_in - accepted) / rows_in if rows_in else 0.0,
                "warn_days": sum(1 for r in rates if warn_rate < r <= error_rate),
                "error_days": sum(1 for r in rates if r > error_rate),
            }
        )
    return rows


def routing_rows(warehouse: Warehouse, month: dt.date) -> list[dict[str, Any]]:
    """Routing changes effective in the month, if the routing table exists yet."""
    try:
        with warehouse.read() as con:
            exists = con.execute("select count(*) from duckdb_tables() where table_name = 'source_routing'").fetchone()
            if not exists or not exists[0]:
                return []
            cursor = con.execute(
                "select source, route, changed_at, effective_from, reason from source_routing "
                "where effective_from >= ? and effective_from < ? order by changed_at",
                [month, next_month(month)],
            )
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except FileNotFoundError:
        return []


def render(context: Mapping[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html", "j2"])
    )
    return env.get_template("attribution_report.html.j2").render(**context)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def summary_markdown(
    month_label: str, totals: Mapping[str, float], credit: pl.DataFrame, chart: bytes, path: Path
) -> str:
    models = [c for c in credit.columns if c != "channel"]
    lines = [
        f"### Attribution {month_label}",
        f"**{totals['conversions']:,.0f}** conversions · **${totals['value']:,.2f}** value · "
        f"**${totals['spend']:,.2f}** spend · report: `{path}`",
        "",
        "| channel | " + " | ".join(models) + " |",
        "|---|" + "---:|" * len(models),
    ]
    for row in credit.iter_rows(named=True):
        lines.append(f"| {row['channel']} | " + " | ".join(f"{row[m]:.1f}" for m in models) + " |")
    lines += ["", f"![credit by channel and model]({_data_uri(chart)})"]
    return "\n".join(lines)


@policy.asset(
    key=["marketing", "attribution_report"],
    partitions_def=MONTHLY,
    group_name="marketing",
    kinds={"html", "jinja"},
    ins={
        "attribution": dg.AssetIn(
            ["marketing", "attribution"],
            partition_mapping=lookback(-(TREND_MONTHS - 1)),
            metadata={"allow_missing_partitions": True},
        ),
        "touchpoints": dg.AssetIn(
            ["marketing", "touchpoints"], partition_mapping=lookback(0), metadata={"allow_missing_partitions": True}
        ),
    },
    code_version="1",
)
def attribution_report(
    context: dg.AssetExecutionContext,
    attribution: pl.DataFrame,
    touchpoints: pl.LazyFrame,
    reports: ReportStore,
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    """The monthly attribution report (HTML with charts, ROAS, data quality), also summarised here."""
    results = [
        _render_month(context, dt.date.fromisoformat(key), attribution, touchpoints, reports, warehouse)
        for key in context.partition_keys
    ]
    if len(results) == 1:
        return results[0]
    # A backfill over several months renders each; the UI shows the list and the latest month's summary.
    metadata = dict(results[-1].metadata or {})
    metadata["reports"] = dg.MetadataValue.md(
        "\n".join(f"- `{r.metadata['report'].value}`" for r in results if r.metadata)  # type: ignore[union-attr]
    )
    return dg.MaterializeResult(metadata=metadata)


def _render_month(
    context: dg.AssetExecutionContext,
    month: dt.date,
    attribution: pl.DataFrame,
    touchpoints: pl.LazyFrame,
    reports: ReportStore,
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    label = month.strftime("%Y-%m")
    if "month" not in attribution.columns:
        raise dg.Failure(f"no attribution for {label}: materialize marketing/attribution for {label} first")
    history = attribution.filter(pl.col("month") <= month)
    if history.filter(pl.col("month") == month).height == 0:
        raise dg.Failure(f"no attribution for {label}: materialize marketing/attribution for {label} first")
    start, end = month, next_month(month)
    spend = (
        touchpoints.filter(
            (pl.col("landing_date") >= start) & (pl.col("landing_date") < end) & ~pl.col("is_conversion")
        )
        .group_by(pl.col("channel").cast(pl.String))
        .agg(pl.col("cost").sum().alias("spend"))
        .collect()
        if "cost" in touchpoints.collect_schema()
        else pl.DataFrame(schema={"channel": pl.String, "spend": pl.Float64})
    )
    credit = credit_table(history, month)
    roas = roas_table(history, spend, month)
    models = [c for c in credit.columns if c != "channel"]
    headline = HEADLINE_MODEL if HEADLINE_MODEL in models else models[0]
    this = history.filter((pl.col("month") == month) & (pl.col("model").cast(pl.String) == headline))
    totals = {
        "conversions": float(this["conversions"].sum()),
        "value": float(this["value"].sum()),
        "spend": float(spend["spend"].sum()) if spend.height else 0.0,
    }
    credit_png = credit_chart(credit)
    charts_png: dict[str, bytes | None] = {
        "credit": credit_png,
        "roas": roas_chart(history, spend, month, headline),
        "trend": trend_chart(history, headline),
    }
    folder = label
    for name, png in charts_png.items():
        if png is not None:
            reports.write(f"{folder}/{name}.png", png)
    quality = quality_rows(context.instance, month, warn_rate=0.02, error_rate=0.10)
    params = _run_parameters(context.instance, month)
    html = render(
        {
            "month_label": label,
            "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "models": models,
            "headline_model": headline,
            "total_conversions": totals["conversions"],
            "total_value": totals["value"],
            "total_spend": totals["spend"],
            "total_roas": totals["value"] / totals["spend"] if totals["spend"] else None,
            "credit_rows": credit.to_dicts(),
            "roas_rows": roas.to_dicts(),
            "charts": {k: _data_uri(v) if v is not None else None for k, v in charts_png.items()},
            "quality_rows": quality,
            "warn_rate": 0.02,
            "error_rate": 0.10,
            "routing_rows": routing_rows(warehouse, month),
            "warehouse": warehouse.path,
            "half_life": params.get("half_life_days", 7.0),
            "first_w": f"{params.get('first_touch_weight', 0.4):.0%}",
            "last_w": f"{params.get('last_touch_weight', 0.4):.0%}",
            "lookback": params.get("lookback_days", 30),
        }
    )
    path = reports.write(f"{folder}/attribution.html", html)
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(path)),
            "month": label,
            "conversions": totals["conversions"],
            "conversion_value": totals["value"],
            "spend": totals["spend"],
            "summary": dg.MetadataValue.md(summary_markdown(label, totals, credit, credit_png, path)),
            "data_quality": dg.MetadataValue.md(_quality_markdown(quality)),
        }
    )


def _run_parameters(instance: dg.DagsterInstance, month: dt.date) -> dict[str, Any]:
    """The parameters the month's journeys and attribution were computed with (from their metadata)."""
    params: dict[str, Any] = {}
    for name in ("journeys", "attribution"):
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["marketing", name]), asset_partitions=[month.isoformat()]),
            limit=1,
        )
        for record in result.records:
            event = record.asset_materialization
            if event is not None:
                params.update({k: getattr(v, "value", v) for k, v in event.metadata.items()})
    return params


def _quality_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| source | days | rows landed | accepted | quarantined | error rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        days = f"{r['days']} of {r['days_in_month']}" + (" ⚠" if r["missing_days"] else "")
        lines.append(
            f"| {r['source']} | {days} | {r['rows_in']:,} | {r['accepted']:,} | {r['rejected']:,} | {r['rate']:.2%} |"
        )
    return "\n".join(lines)
