"""The code location: loads cleanly, and every asset carries the house policies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

from intelligence.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_import_with_zero_warnings() -> None:
    # A fresh interpreter, every warning an error: Dagster deprecation, beta and preview warnings
    # and our own would all fail this.
    code = "import intelligence.definitions as d; d.defs.resolve_asset_graph(); d.defs.resolve_all_job_defs()"
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr


def test_every_asset_has_owners_description_group_and_code_version() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        name = key.to_user_string()
        assert node.owners, f"{name} has no owners"
        assert node.description, f"{name} has no description"
        assert node.group_name and node.group_name != "default", f"{name} has no group"
        assert node.code_version, f"{name} has no code version"


def test_partitioned_assets_backfill_in_one_run_and_retry_with_backoff() -> None:
    for assets_def in defs.assets or []:
        if not isinstance(assets_def, dg.AssetsDefinition) or not assets_def.is_executable:
            continue
        if assets_def.partitions_def is not None:
            assert assets_def.backfill_policy == dg.BackfillPolicy.single_run(), assets_def.node_def.name
        policy = assets_def.node_def.retry_policy
        assert policy is not None and policy.backoff == dg.Backoff.EXPONENTIAL, assets_def.node_def.name
        assert policy.jitter == dg.Jitter.PLUS_MINUS


def test_marketing_sources_and_their_checks_are_in_the_graph() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for source in ("ads", "social", "crm", "web", "email"):
        assert {
            f"marketing/raw_{source}",
            f"marketing/cleansed_{source}",
            f"marketing/cleansed_{source}_quarantine",
        } <= keys
        checks = {
            c.name for c in graph.asset_check_keys if c.asset_key.to_user_string() == f"marketing/cleansed_{source}"
        }
        assert {"error_rate", "parseable_rows", "cleansing_rules"} <= checks
        # crm has no primary key (customers and orders share the file); the others do.
        assert ("rule_primary_key" in checks) == (source != "crm")
