"""Path attribution: the attribution models on pre-aggregated paths, the layout many tools export.

Input: every `landing/paths/*.csv`, `;`-separated, header
`path;total_conversions;total_conversion_value;total_null`, channels joined by ` > `. All files
together are the data set: the same path in two files counts twice, but a byte-identical line
(same path and counts, typically a re-export) is quarantined as a duplicate. Lines that do not
parse, have an empty channel or negative counts go to the quarantine with their reason; the rest
are credited with every model except time decay (paths carry no timestamps).
"""

import dagster as dg
import dataframely as dy
import polars as pl

from assets.marketing.attribution_models import PATH_MODELS, attribute_paths
from intelligence import policy
from intelligence.checks import contract_check_results, contract_check_specs
from intelligence.cleansing import REJECT, REJECT_DETAIL, quarantine_schema, run_cleansing
from intelligence.contracts import Contract
from intelligence.sources import QUARANTINE_IO_MANAGER, code_version
from resources.landing_zone import LandingZone, empty_frame

FOLDER = "paths"
SEPARATOR = ";"
COLUMNS = {"path": "str", "total_conversions": "float", "total_conversion_value": "float", "total_null": "float"}
KEY = dg.AssetKey(["marketing", "path_attribution"])
QUARANTINE_KEY = dg.AssetKey(["marketing", "path_attribution_quarantine"])


class PathRow(dy.Schema):
    path = dy.String(nullable=False, description="Channels in order, joined by ' > '.")
    total_conversions = dy.Float64(nullable=False, min=0)
    total_conversion_value = dy.Float64(nullable=False, min=0)
    total_null = dy.Float64(nullable=False, min=0)


class PathCredit(dy.Schema):
    model = dy.Enum(list(PATH_MODELS), primary_key=True)
    channel = dy.String(primary_key=True)
    conversions = dy.Float64(nullable=False, min=0)
    value = dy.Float64(nullable=False, min=0)


INPUT_CONTRACT = Contract(
    schema=PathRow,
    version="1.0.0",
    owner="team:analytics",
    description="One exported path with its conversions, conversion value and non-converting count.",
)


def flag_bad_paths(frame: pl.DataFrame) -> pl.DataFrame:
    """Reject paths with an empty channel (`a >  > b`, a trailing `>`): their credit has nowhere to go."""
    channels = pl.col("path").str.split(">")
    empty_channel = channels.list.eval(pl.element().str.strip_chars() == "").list.any()
    return frame.with_columns(
        pl.when(pl.col("path").is_not_null() & empty_channel)
        .then(pl.lit("empty_channel"))
        .otherwise(None)
        .alias(REJECT),
        pl.when(pl.col("path").is_not_null() & empty_channel)
        .then(pl.format("path '{}' has an empty channel", pl.col("path")))
        .otherwise(None)
        .alias(REJECT_DETAIL),
    )


def to_paths(rows: pl.DataFrame) -> pl.DataFrame:
    """Accepted rows → the models' path layout (list of channels, conversions, value, nulls)."""
    return rows.select(
        pl.col("path").str.split(">").list.eval(pl.element().str.strip_chars()).alias("path"),
        pl.col("total_conversions").alias("conversions"),
        pl.col("total_conversion_value").alias("value"),
        pl.col("total_null").alias("nulls"),
    )


def read_path_files(landing: LandingZone) -> tuple[pl.DataFrame, list[str]]:
    files, skipped = landing.files_in(FOLDER)
    frames = [landing.read_file(path, COLUMNS, separator=SEPARATOR)[0] for path in files]  # type: ignore[arg-type]
    frame = pl.concat(frames) if frames else empty_frame(COLUMNS)  # type: ignore[arg-type]
    notes = [f"{r.path}: {'; '.join(r.notes)}" for r in skipped]
    return frame, notes


VERSION = code_version("1", INPUT_CONTRACT.version, flag_bad_paths, to_paths)


@policy.multi_asset(
    name="marketing__path_attribution",
    outs={
        "credit": policy.asset_out(
            key=KEY,
            description="Every model except time decay on the pre-aggregated paths in landing/paths/.",
            group_name="marketing",
            code_version=VERSION,
            metadata={
                "dagster/column_schema": Contract(PathCredit, "1.0.0", "team:analytics", "credit").table_schema()
            },
        ),
        "quarantine": policy.asset_out(
            key=QUARANTINE_KEY,
            description="Path lines that could not be used, with the reason.",
            group_name="marketing",
            code_version=VERSION,
            io_manager_key=QUARANTINE_IO_MANAGER,
            kinds={"parquet", "quarantine"},
        ),
    },
    deps=[dg.AssetKey(["landing", "paths"])],
    check_specs=contract_check_specs(KEY, INPUT_CONTRACT),
    description="Attribution models on pre-aggregated path exports.",
)
def path_attribution(context: dg.AssetExecutionContext, landing: LandingZone):
    parsed, notes = read_path_files(landing)
    result = run_cleansing(parsed, list(COLUMNS), INPUT_CONTRACT, flag_bad_paths)
    paths = to_paths(result.accepted)
    credit = attribute_paths(paths) if paths.height else PathCredit.create_empty()
    credit = PathCredit.validate(credit, cast=True)  # our own output: a failure here is a bug, not bad data
    yield dg.Output(
        credit,
        output_name="credit",
        metadata={
            "files": parsed["_source_file"].n_unique() if parsed.height else 0,
            "path_lines": result.rows_in,
            "accepted_lines": result.accepted.height,
            "quarantined_lines": result.quarantine.height,
            "conversions": float(paths["conversions"].sum()) if paths.height else 0.0,
            "skipped_files": dg.MetadataValue.md("\n".join(f"- {n}" for n in notes) or "none"),
        },
    )
    quarantine = result.quarantine.drop("landing_date")
    yield dg.Output(
        quarantine
        if quarantine.height
        else quarantine.cast({k: v for k, v in quarantine_schema(list(COLUMNS)).items() if k != "landing_date"}),
        output_name="quarantine",
    )
    yield from contract_check_results(
        asset_key=KEY,
        contract=INPUT_CONTRACT,
        rows_in=result.rows_in,
        rule_counts=result.rule_counts,
        stage_counts=result.stage_counts,
        cleansing_counts=result.cleansing_counts,
        partitions=["all"],
        partition_rates={},
        quarantine_location=f"quarantine/{'/'.join(QUARANTINE_KEY.path)}.parquet",
        quarantine_view="marketing.path_attribution_quarantine",
        accepted=result.accepted.height,
    )


landing_paths = dg.AssetSpec(
    ["landing", "paths"],
    description="Pre-aggregated path exports arriving in landing/paths/*.csv (read only).",
    group_name="marketing",
    kinds={"file"},
    owners=list(policy.OWNERS),
)
