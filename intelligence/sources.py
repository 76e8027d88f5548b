"""The module factory for sources: a contract and a cleansing function become Dagster assets.

For a source `ads` in domain `marketing` it builds:
- `marketing/raw_ads`: the day's landing files → typed rows, every record kept, with parse status;
- `marketing/cleansed_ads` + `marketing/cleansed_ads_quarantine`: standard cleansing and the
  contract; accepted rows go on, every rejected row goes to quarantine with stage, rule and reason;
  one check per contract rule, the parse and cleansing stages, and the error rate.
Both are daily-partitioned and accept a partition range in one run (single-run backfills).
"""

import datetime as dt
import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dagster as dg
import polars as pl

from intelligence import policy
from intelligence.checks import contract_check_results, contract_check_specs, volume_check_result
from intelligence.cleansing import PARTITION_DATE, Cleanser, quarantine_schema, run_cleansing
from intelligence.contracts import Contract
from intelligence.landing_watch import digest_files
from intelligence.partitions import DAILY, lookback, partition_days
from intelligence.strict import StrictContext
from resources.lake import PARTITION_COLUMN
from resources.landing_zone import PARSE_ERROR, PARSE_STATUS, ColumnType, LandingZone, polars_schema

QUARANTINE_IO_MANAGER = "quarantine_io_manager"
FACTORY_VERSION = "1"
STANDARD = "standard"
STRICT = "strict"
LANDING_DIGESTS = "landing_digests"  # raw asset metadata: day → digest of the files read
ROUTES = (STANDARD, STRICT)
CRM_CUSTOMERS = dg.AssetKey(["marketing", "cleansed_crm"])
ALL_HISTORY_DAYS = 100 * 366  # "every earlier day": clipped to the first partition

StrictCleanser = Callable[[pl.DataFrame, StrictContext], pl.DataFrame]


@dataclass(frozen=True)
class SourceSpec:
    """Everything the platform needs to know about one source."""

    name: str
    domain: str
    description: str
    landing_columns: Mapping[str, ColumnType]
    contract: Contract
    cleanse: Cleanser | None = None
    strict: StrictCleanser | None = None
    strict_needs_customers: bool = False

    @property
    def group(self) -> str:
        """Sources get their own group in the UI, beside the domain's analysis modules."""
        return f"{self.domain}_sources"

    @property
    def raw_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.domain, f"raw_{self.name}"])

    def route_key(self, route: str) -> dg.AssetKey:
        prefix = "cleansed" if route == STANDARD else "strict_cleansed"
        return dg.AssetKey([self.domain, f"{prefix}_{self.name}"])

    def route_quarantine_key(self, route: str) -> dg.AssetKey:
        key = self.route_key(route)
        return dg.AssetKey([*key.path[:-1], f"{key.path[-1]}_quarantine"])

    @property
    def cleansed_key(self) -> dg.AssetKey:
        return self.route_key(STANDARD)

    @property
    def quarantine_key(self) -> dg.AssetKey:
        return self.route_quarantine_key(STANDARD)

    @property
    def strict_key(self) -> dg.AssetKey:
        return self.route_key(STRICT)

    @property
    def landing_key(self) -> dg.AssetKey:
        return dg.AssetKey(["landing", self.name])


def code_version(*parts: object) -> str:
    """A code version that changes when the contract or the module's logic changes."""
    digest = hashlib.sha256()
    for part in parts:
        text = inspect.getsource(part) if callable(part) else str(part)
        digest.update(text.encode())
    return digest.hexdigest()[:12]


def read_landing_days(
    landing: LandingZone, source: str, days: list[dt.date], columns: Mapping[str, ColumnType]
) -> tuple[pl.DataFrame, list[dict[str, object]], dict[str, str]]:
    """Every landing record of `source` for `days`, typed, with the day as `landing_date`; plus the
    digest of each day's set of files (the landing sensor skips sets already read)."""
    frames = []
    files: list[dict[str, object]] = []
    digests: dict[str, str] = {}
    for day in days:
        paths, _ = landing.files_for_day(source, day)
        stats = [(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in paths if path.exists()]
        digests[day.isoformat()] = digest_files(stats)
        read = landing.read_day(source, day, columns)
        frames.append(read.frame.with_columns(pl.lit(day).alias(PARTITION_DATE)))
        files.extend(
            {
                "day": day.isoformat(),
                "file": r.path,
                "rows": r.rows,
                "parse_errors": r.parse_errors,
                "notes": "; ".join(r.notes),
            }
            for r in read.files
        )
    schema = {**polars_schema(columns), PARTITION_DATE: pl.Date()}
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
    return frame, files, digests


def _files_markdown(files: list[dict[str, object]], limit: int = 40) -> str:
    if not files:
        return "_no landing files for these days_"
    lines = ["| day | file | rows | parse errors | notes |", "|---|---|---:|---:|---|"]
    for f in files[:limit]:
        lines.append(f"| {f['day']} | {f['file']} | {f['rows']} | {f['parse_errors']} | {f['notes']} |")
    if len(files) > limit:
        lines.append(f"| … | {len(files) - limit} more files | | | |")
    return "\n".join(lines)


def build_source_assets(spec: SourceSpec) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """The landing spec, the raw asset and the cleansed + quarantine assets of one source."""
    landing_spec = dg.AssetSpec(
        spec.landing_key,
        description=f"Files arriving in landing/{spec.name}/<YYYY-MM-DD>/ (read only; never modified).",
        group_name=spec.group,
        kinds={"file"},
        owners=list(policy.OWNERS),
    )
    version = code_version(FACTORY_VERSION, spec.contract.version, spec.cleanse or "", dict(spec.landing_columns))

    @policy.asset(
        key=spec.raw_key,
        deps=[spec.landing_key],
        partitions_def=DAILY,
        group_name=spec.group,
        code_version=version,
        metadata={PARTITION_COLUMN: PARTITION_DATE},
        kinds={"parquet", "csv" if spec.name != "social" else "json"},
        description=f"{spec.description}: every landing record of the day, typed, with its parse status.",
    )
    def raw_asset(context: dg.AssetExecutionContext, landing: LandingZone) -> dg.Output[pl.DataFrame]:
        frame, files, digests = read_landing_days(landing, spec.name, partition_days(context), spec.landing_columns)
        errors = int((frame[PARSE_STATUS] == PARSE_ERROR).sum()) if frame.height else 0
        return dg.Output(
            frame,
            metadata={
                "files": len(files),
                "rows_landed": frame.height,
                "parse_errors": errors,
                "landing_files": dg.MetadataValue.md(_files_markdown(files)),
                LANDING_DIGESTS: dg.MetadataValue.json(digests),
            },
        )

    assets: list[dg.AssetsDefinition | dg.AssetSpec] = [landing_spec, raw_asset]
    assets.append(_cleansing_asset(spec, STANDARD, version))
    if spec.strict is not None:
        assets.append(_cleansing_asset(spec, STRICT, code_version(version, spec.strict)))
    return assets


def _cleansing_asset(spec: SourceSpec, route: str, version: str) -> dg.AssetsDefinition:
    """The standard or strict cleansing of a source: accepted rows + quarantine + contract checks."""
    contract = spec.contract
    key, quarantine_key = spec.route_key(route), spec.route_quarantine_key(route)
    business = list(spec.landing_columns)
    ins = {"raw": dg.AssetIn(spec.raw_key)}
    if route == STRICT and spec.strict_needs_customers:
        ins["crm_history"] = dg.AssetIn(
            CRM_CUSTOMERS, partition_mapping=lookback(-ALL_HISTORY_DAYS), metadata={"allow_missing_partitions": True}
        )
    label = "standard" if route == STANDARD else "strict"
    quarantine_view = f"{spec.domain}.{quarantine_key.path[-1]}"

    def cleansing_for(context_inputs: dict[str, pl.LazyFrame]) -> Cleanser | None:
        if route == STANDARD:
            return spec.cleanse
        history = context_inputs.get("crm_history")
        customers = pl.Series("customer_id", [], pl.String)
        if history is not None and "record_type" in history.collect_schema():
            customers = (
                history.filter(pl.col("record_type").cast(pl.String) == "customer")
                .select("customer_id")
                .unique()
                .collect()
                .to_series()
            )
        strict, ctx = spec.strict, StrictContext(known_customers=customers)
        assert strict is not None
        return lambda frame: strict(frame, ctx)

    def compute(context: dg.AssetExecutionContext, raw: pl.DataFrame, **extra: pl.LazyFrame):
        result = run_cleansing(raw, business, contract, cleansing_for(extra))
        partitions = list(context.partition_keys)
        rows_by_day = _count_by_day(raw, partitions)
        quarantined_by_day = _count_by_day(result.quarantine, partitions)
        accepted_by_day = _count_by_day(result.accepted, partitions)
        rates = {p: (quarantined_by_day[p] / rows_by_day[p]) if rows_by_day[p] else 0.0 for p in partitions}
        lake = getattr(context.resources, QUARANTINE_IO_MANAGER, None)
        location = _quarantine_location(lake, quarantine_key, partitions)
        yield dg.Output(
            result.accepted,
            output_name="accepted",
            metadata={
                "route": route,
                "contract_version": contract.version,
                "rows_in": result.rows_in,
                "accepted_rows": result.accepted.height,
                "rejected_rows": result.quarantine.height,
                "rejected_parse": result.stage_counts["parse"],
                "rejected_cleansing": result.stage_counts["cleansing"],
                "rejected_contract": result.stage_counts["contract"],
                "error_rate": (result.quarantine.height / result.rows_in) if result.rows_in else 0.0,
                "quarantine": quarantine_view,
            },
        )
        yield dg.Output(
            result.quarantine.sort(PARTITION_DATE)
            if result.quarantine.height
            else result.quarantine.cast(pl.Schema(quarantine_schema(business))),
            output_name="quarantine",
            metadata={"rows_quarantined": result.quarantine.height},
        )
        yield from contract_check_results(
            asset_key=key,
            contract=contract,
            rows_in=result.rows_in,
            rule_counts=result.rule_counts,
            stage_counts=result.stage_counts,
            cleansing_counts=result.cleansing_counts,
            partitions=partitions,
            partition_rates=rates,
            quarantine_location=location,
            quarantine_view=quarantine_view,
            accepted=result.accepted.height,
        )
        if contract.min_rows is not None:
            yield volume_check_result(key, contract, accepted_by_day)

    # Dagster finds inputs by parameter name: give the compute function exactly the ones declared.
    params = [
        inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=dg.AssetExecutionContext),
        inspect.Parameter("raw", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=pl.DataFrame),
        *[
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=pl.LazyFrame)
            for name in ins
            if name != "raw"
        ],
    ]
    compute.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]

    return policy.multi_asset(
        name=f"{spec.domain}__{key.path[-1]}",
        outs={
            "accepted": policy.asset_out(
                DAILY,
                key=key,
                description=(
                    f"{spec.description}: {label} cleansing, rows that honour {contract.name} {contract.version}."
                ),
                group_name=spec.group,
                code_version=version,
                metadata={
                    PARTITION_COLUMN: PARTITION_DATE,
                    "route": route,
                    "contract": contract.name,
                    "contract_version": contract.version,
                    "contract_owner": contract.owner,
                    "dagster/column_schema": contract.table_schema(),
                },
            ),
            "quarantine": policy.asset_out(
                DAILY,
                key=quarantine_key,
                description=f"Rows of {spec.name} rejected on the {label} path, with stage, rule and reason.",
                group_name=spec.group,
                code_version=version,
                io_manager_key=QUARANTINE_IO_MANAGER,
                metadata={PARTITION_COLUMN: PARTITION_DATE},
                kinds={"parquet", "quarantine"},
            ),
        },
        ins=ins,
        partitions_def=DAILY,
        check_specs=contract_check_specs(key, contract),
        description=f"{label.capitalize()} cleansing of {spec.name} against contract {contract.name}.",
    )(compute)


def _count_by_day(frame: pl.DataFrame, partitions: list[str]) -> dict[str, int]:
    counts = {p: 0 for p in partitions}
    if frame.height and PARTITION_DATE in frame.columns:
        for day, n in frame.group_by(PARTITION_DATE).len().iter_rows():
            key = day.isoformat() if isinstance(day, dt.date) else str(day)
            if key in counts:
                counts[key] = int(n)
    return counts


def _quarantine_location(lake: object, key: dg.AssetKey, partitions: list[str]) -> str:
    folder = "/".join(key.path)
    name = f"{partitions[0]}.parquet" if len(partitions) == 1 else f"{{{partitions[0]}…{partitions[-1]}}}.parquet"
    base = getattr(lake, "base_path", None)
    return f"{base}/{folder}/{name}" if base else f"quarantine/{folder}/{name}"
