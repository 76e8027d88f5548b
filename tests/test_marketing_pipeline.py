"""The marketing graph end to end through `dg.materialize`, on generated data with ground truth.

One module-scoped world (400 people, 45 days from 2024-01-01) in a temp INTELLIGENCE_HOME and a real
temp instance; the tests read what the assets wrote.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from intelligence.settings import Settings
from intelligence.synthetic.marketing import GeneratorConfig, generate_marketing

START = dt.date(2024, 1, 1)
DAYS = 45
SOURCES = ("ads", "social", "crm", "web", "email")
RANGE = {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-02-14"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dg.DagsterInstance, dict]]:
    root = tmp_path_factory.mktemp("marketing")
    home = root / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("INTELLIGENCE_HOME", str(home))
    config = Settings.from_env()
    generate_marketing(
        GeneratorConfig(start=START, days=DAYS, people=400, seed=11, flaky_days=(20, 21)),
        landing_root=config.landing,
        truth_root=config.truth,
    )
    from intelligence.definitions import defs
    from intelligence.resources import build_resources

    resources = build_resources(config)
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    (root / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        sources = dg.AssetSelection.assets(
            *[["marketing", f"{kind}_{s}"] for s in SOURCES for kind in ("raw", "cleansed")]
        ).required_multi_asset_neighbors()
        ok = dg.materialize(assets, selection=sources, instance=instance, resources=resources, tags=RANGE)
        assert ok.success
        for month in ("2024-01-01", "2024-02-01"):
            result = dg.materialize(
                assets,
                selection=dg.AssetSelection.assets(["marketing", "identity"]).required_multi_asset_neighbors(),
                instance=instance,
                resources=resources,
                partition_key=month,
            )
            assert result.success
        touch = dg.materialize(
            assets,
            selection=dg.AssetSelection.assets(["marketing", "touchpoints"]).required_multi_asset_neighbors(),
            instance=instance,
            resources=resources,
            tags=RANGE,
        )
        assert touch.success
        monthly = dg.AssetSelection.assets(
            ["marketing", "journeys"], ["marketing", "attribution"], ["marketing", "attribution_report"]
        ).required_multi_asset_neighbors()
        jan = dg.materialize(
            assets, selection=monthly, instance=instance, resources=resources, partition_key="2024-01-01"
        )
        assert jan.success
        yield config, instance, {"assets": assets, "resources": resources, "monthly": monthly}
    mp.undo()


def _lake(config: Settings, name: str) -> pl.DataFrame:
    return pl.read_parquet(config.lake / "marketing" / name / "*.parquet")


def test_rows_in_equal_accepted_plus_quarantined_for_every_source_and_day(world) -> None:  # type: ignore[no-untyped-def]
    config, _, _ = world
    for source in SOURCES:
        raw = _lake(config, f"raw_{source}").group_by("landing_date").len()
        accepted = _lake(config, f"cleansed_{source}").group_by("landing_date").len()
        quarantined = pl.read_parquet(config.quarantine / "marketing" / f"cleansed_{source}_quarantine" / "*.parquet")
        assert quarantined["_reason"].null_count() == 0
        q = quarantined.group_by("landing_date").len()
        joined = (
            raw.join(accepted, on="landing_date", how="left", suffix="_ok")
            .join(q, on="landing_date", how="left", suffix="_q")
            .fill_null(0)
        )
        assert joined.filter(pl.col("len") != pl.col("len_ok") + pl.col("len_q")).height == 0, source
        assert len(list((config.lake / "marketing" / f"raw_{source}").glob("*.parquet"))) == DAYS


def test_every_labelled_bad_row_is_quarantined_with_a_reason(world) -> None:  # type: ignore[no-untyped-def]
    config, _, _ = world
    defects = pl.read_parquet(config.truth / "marketing" / "defects.parquet").filter(
        pl.col("line").is_not_null() & pl.col("kind").is_in(["duplicate", "null", "malformed"])
    )
    for source in SOURCES:
        expected = defects.filter(pl.col("source") == source).select(pl.col("file"), pl.col("line"))
        quarantined = pl.read_parquet(
            config.quarantine / "marketing" / f"cleansed_{source}_quarantine" / "*.parquet"
        ).select(pl.col("_source_file").alias("file"), pl.col("_line").alias("line"))
        missed = expected.join(quarantined, on=["file", "line"], how="anti")
        assert missed.height == 0, f"{source}: labelled defects accepted: {missed.head(5).to_dicts()}"


def test_derived_modules_honour_their_contracts(world) -> None:  # type: ignore[no-untyped-def]
    config, _, ctx = world
    # Identity for both months in one run: identifiers repeat across months but not within one.
    both = dg.materialize(
        ctx["assets"],
        selection=dg.AssetSelection.assets(["marketing", "identity"]).required_multi_asset_neighbors(),
        instance=world[1],
        resources=ctx["resources"],
        tags={"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-02-01"},
    )
    assert both.success
    rates = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in both.get_asset_check_evaluations()}
    assert rates[("marketing/identity", "error_rate")] is True
    for name in ("identity", "touchpoints", "journeys", "attribution"):
        quarantine = config.quarantine / "marketing" / f"{name}_quarantine"
        rows = pl.read_parquet(quarantine / "*.parquet").height if quarantine.exists() else 0
        assert rows == 0, f"{name}: {rows} produced rows broke its own contract"


def test_identity_is_precise_and_touchpoints_are_not_double_counted(world) -> None:  # type: ignore[no-untyped-def]
    config, _, _ = world
    identity = pl.read_parquet(config.lake / "marketing" / "identity" / "2024-01-01.parquet")
    truth = pl.read_parquet(config.truth / "marketing" / "identities.parquet")
    prefix = {"cookie_id": "cookie:", "customer_id": "customer:", "email_hash": "email:", "social_handle": "handle:"}
    # Cleansing normalises handles (`@Jane` → `jane`); compare like with like.
    normalised = (
        pl.when(pl.col("identifier_type") == "social_handle")
        .then(pl.col("identifier").str.strip_prefix("@").str.to_lowercase())
        .otherwise(pl.col("identifier"))
    )
    truth = truth.select(
        (pl.col("identifier_type").replace_strict(prefix) + normalised).alias("identifier"),
        pl.col("person_id").alias("true_person"),
    )
    joined = identity.join(truth, on="identifier")
    assert joined.height >= 0.95 * identity.height

    def pairs(frame: pl.DataFrame, by: list[str]) -> float:
        return frame.group_by(by).len().select((pl.col("len") * (pl.col("len") - 1) / 2).sum()).item()

    same_both = pairs(joined, ["person_id", "true_person"])
    precision = same_both / pairs(joined, ["person_id"])
    recall = same_both / pairs(joined, ["true_person"])
    assert precision >= 0.99
    assert recall >= 0.3  # only identifiers the data links can be joined; the rest stay separate
    touchpoints = _lake(config, "touchpoints")
    records = pl.read_parquet(config.truth / "marketing" / "records.parquet").select(
        (pl.col("source") + ":" + pl.col("record_id")).alias("event_key"), "event_id"
    )
    events = touchpoints.join(records, on="event_key", how="left")
    assert events["event_id"].null_count() == 0
    duplicated = events.group_by("event_id").len().filter(pl.col("len") > 1).height
    assert duplicated / events.height < 0.005


def test_attribution_credits_sum_to_the_months_conversions_for_every_model(world) -> None:  # type: ignore[no-untyped-def]
    config, _, _ = world
    journeys = pl.read_parquet(config.lake / "marketing" / "journeys" / "2024-01-01.parquet")
    per_journey = journeys.group_by("journey_id").agg(pl.col("conversions", "value").first())
    credit = pl.read_parquet(config.lake / "marketing" / "attribution" / "2024-01-01.parquet")
    sums = credit.group_by("model").agg(pl.col("conversions", "value").sum())
    assert sums.height == 8
    for row in sums.iter_rows(named=True):
        assert row["conversions"] == pytest.approx(per_journey["conversions"].sum(), rel=1e-9), row["model"]
        assert row["value"] == pytest.approx(per_journey["value"].sum(), rel=1e-9), row["model"]
    # January's conversions are exactly January's valid orders.
    orders = _lake(config, "touchpoints").filter(pl.col("is_conversion") & (pl.col("ts").dt.month() == 1))
    assert per_journey["conversions"].sum() == orders.height


def test_report_is_rendered_with_charts_and_data_quality(world) -> None:  # type: ignore[no-untyped-def]
    config, instance, _ = world
    html = (config.reports / "2024-01" / "attribution.html").read_text()
    assert "Marketing attribution — 2024-01" in html
    assert html.count("data:image/png;base64,") >= 2
    for source in SOURCES:
        assert f"<td>{source}</td>" in html
    assert html.count("31 of 31") == len(SOURCES) and "no data:" not in html  # every source, every day
    event = instance.get_latest_materialization_event(dg.AssetKey(["marketing", "attribution_report"]))
    assert event is not None
    summary = event.asset_materialization.metadata["summary"].value  # type: ignore[union-attr]
    assert "### Attribution 2024-01" in summary and "![credit by channel and model](data:image/png" in summary


def test_backfill_of_two_months_equals_month_by_month(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, instance, ctx = world
    feb = dg.materialize(
        ctx["assets"],
        selection=ctx["monthly"],
        instance=instance,
        resources=ctx["resources"],
        partition_key="2024-02-01",
    )
    assert feb.success
    one_by_one = {
        name: {
            m: pl.read_parquet(config.lake / "marketing" / name / f"{m}.parquet") for m in ("2024-01-01", "2024-02-01")
        }
        for name in ("journeys", "attribution")
    }
    both = dg.materialize(
        ctx["assets"],
        selection=ctx["monthly"],
        instance=instance,
        resources=ctx["resources"],
        tags={"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-02-01"},
    )
    assert both.success
    for name, months in one_by_one.items():
        for month, before in months.items():
            after = pl.read_parquet(config.lake / "marketing" / name / f"{month}.parquet")
            # Same rows; credits equal up to float summation order.
            assert_frame_equal(after.sort(after.columns[:3]), before.sort(before.columns[:3]), rel_tol=1e-9)
    # February has data up to the 14th only: the report says which days every source lacks.
    february = (config.reports / "2024-02" / "attribution.html").read_text()
    assert february.count("14 of 29") == len(SOURCES)
    assert february.count("no data: 2024-02-15, 2024-02-16, 2024-02-17, 2024-02-18, 2024-02-19 and 10 more") == len(
        SOURCES
    )


def test_touchpoints_of_a_day_whose_crm_has_not_landed_are_built_and_say_so(world) -> None:  # type: ignore[no-untyped-def]
    """A late source does not fail the day (nor wait out retries): the day is built from what has landed, its
    metadata names the missing source, and touchpoints are rebuilt when the late partition arrives."""
    config, instance, ctx = world
    day = "2024-02-15"  # the day after the generated window: no files, so every source yields an empty partition
    landed = dg.AssetSelection.assets(
        *[["marketing", f"{kind}_{s}"] for s in SOURCES if s != "crm" for kind in ("raw", "cleansed")]
    ).required_multi_asset_neighbors()
    assert dg.materialize(
        ctx["assets"], selection=landed, instance=instance, resources=ctx["resources"], partition_key=day
    ).success
    touchpoints = dg.AssetSelection.assets(["marketing", "touchpoints"]).required_multi_asset_neighbors()
    built = dg.materialize(
        ctx["assets"], selection=touchpoints, instance=instance, resources=ctx["resources"], partition_key=day
    )
    assert built.success
    metadata = next(
        e.step_materialization_data.materialization.metadata
        for e in built.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["marketing", "touchpoints"])
    )
    missing = {k: v.value for k, v in metadata.items() if k.startswith("missing_days_")}
    assert missing == {"missing_days_crm": day}
    assert (config.lake / "marketing" / "touchpoints" / f"{day}.parquet").exists()
