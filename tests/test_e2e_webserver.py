"""End to end through the real webserver and daemon: the UI's Materialize request, the run queue, the lake.

A temp DAGSTER_HOME (with the project's dagster.yaml) and a temp INTELLIGENCE_HOME holding one
hand-written landing file; `dagster-webserver` and `dagster-daemon` run as subprocesses, exactly
as in production minus the containers. The run is launched with the GraphQL mutation the UI's
Materialize button sends, goes through the QueuedRunCoordinator (so it needs the daemon), and its
outcome is checked through GraphQL and on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from dagster_processes import (
    PROJECT_ROOT,
    VENV_BIN,
    DagsterProcess,
    Webserver,
    describe,
    free_port,
    start_process,
    stop_all,
    wait_until,
)

pytestmark = pytest.mark.e2e

LOCATION = "intelligence"
REPOSITORY = "__repository__"
ASSET_JOB = "__ASSET_JOB"
PARTITION = "2024-01-05"
RAW = ["marketing", "raw_ads"]
CLEANSED = ["marketing", "cleansed_ads"]
QUARANTINE = ["marketing", "cleansed_ads_quarantine"]
SERVER_TIMEOUT = 90
RUN_TIMEOUT = 120
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

# Five clicks; c2 needs the channel normalised by cleanse_ads, c4 breaks the contract (cost < 0).
LANDING_CSV = """\
click_id,cookie_id,campaign,channel,cost,ts
c1,k1,Winter,paid_search,0.50,2024-01-05T08:00:00Z
c2,k2,winter,Paid Search,0.75,2024-01-05T09:30:00Z
c3,k3,spring,display,0.20,2024-01-05T10:00:00Z
c4,k4,spring,video,-1.00,2024-01-05T11:00:00Z
c5,k5,spring,display,0.30,2024-01-05T12:00:00Z
"""
ROWS_IN, ACCEPTED, QUARANTINED = 5, 4, 1

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

ASSET_CHECKS_QUERY = """
query AssetChecks($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name jobNames executionForLatestMaterialization { runId status } } }
    }
  }
}
"""

# The document the UI's Materialize button sends (LaunchPipelineExecution in the bundled webapp).
LAUNCH_RUN_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id runId pipelineName status } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""

RUN_STATUS_QUERY = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status tags { key value } }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

RUN_LOGS_QUERY = """
query RunLogs($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ExecutionStepFailureEvent { error { message stack } }
        ... on RunFailureEvent { pipelineRunFailureError: error { message stack } }
      }
    }
    ... on PythonError { message }
  }
}
"""

MATERIALIZATIONS_QUERY = """
query Materializations($assetKeys: [AssetKeyInput!], $partitions: [String!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    assetMaterializations(partitions: $partitions) {
      runId
      partition
      metadataEntries {
        label
        __typename
        ... on IntMetadataEntry { intValue }
        ... on FloatMetadataEntry { floatValue }
        ... on TextMetadataEntry { text }
      }
    }
  }
}
"""

CHECK_EXECUTIONS_QUERY = """
query CheckExecutions($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 20) {
    runId
    status
    evaluation {
      success
      severity
      description
      metadataEntries {
        label
        ... on IntMetadataEntry { intValue }
        ... on FloatMetadataEntry { floatValue }
      }
    }
  }
}
"""


@dataclass
class Stack:
    webserver: Webserver
    processes: list[DagsterProcess]
    dagster_home: Path
    intelligence_home: Path


def _env(dagster_home: Path, intelligence_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(dagster_home),
        INTELLIGENCE_HOME=str(intelligence_home),
        INTELLIGENCE_START_DATE="2024-01-01",
        PYTHONUNBUFFERED="1",  # the captured output is complete when a failure shows it
    )
    return env


def _dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    # Create the SQLite storages once, here: the webserver, the daemon and their code servers all
    # start at the same moment, and when several of them create a fresh SQLite instance together
    # its alembic_version table can end up stamped twice ("has more than one head present",
    # dagster-io/dagster#27390). `dagster dev` avoids this by creating the instance before its children.
    with dg.DagsterInstance.from_config(str(home)):
        pass
    return home


def _intelligence_home(tmp_path: Path) -> Path:
    home = tmp_path / "intelligence_home"
    (home / "landing").mkdir(parents=True)
    return home


def _land(home: Path) -> None:
    """The day's file, landed just before the launch: the RUNNING landing sensor then sees it only while our
    run is queued or running (it waits for that run) or after it (the files are already read), so the one
    run of this partition is ours. Landed before the stack started, the sensor's first tick could request a
    run of its own first."""
    day = home / "landing" / "ads" / PARTITION
    day.mkdir(parents=True)
    (day / f"ads_{PARTITION}_01.csv").write_text(LANDING_CSV)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """dagster-webserver + dagster-daemon on temp homes; both process groups are killed afterwards."""
    dagster_home, intelligence_home = _dagster_home(tmp_path), _intelligence_home(tmp_path)
    env = _env(dagster_home, intelligence_home)
    port = free_port()
    logs = tmp_path / "logs"
    processes: list[DagsterProcess] = []
    try:
        processes.append(
            start_process(
                "webserver",
                [str(VENV_BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                env,
                logs,
            )
        )
        processes.append(
            start_process("daemon", [str(VENV_BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, logs)
        )
        webserver = Webserver(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + SERVER_TIMEOUT
        wait_until(webserver.server_info, timeout=SERVER_TIMEOUT, what="/server_info", processes=processes)
        wait_until(
            lambda: _location_loaded(webserver),
            timeout=max(1.0, deadline - time.monotonic()),
            what=f"code location {LOCATION}",
            processes=processes,
        )
        yield Stack(webserver, processes, dagster_home, intelligence_home)
    finally:
        stop_all(processes, grace_seconds=5)


def _location_loaded(webserver: Webserver) -> bool:
    """True once the webserver has loaded our code location; a load error fails with its traceback."""
    workspace = webserver.graphql(WORKSPACE_QUERY)["workspaceOrError"]
    assert workspace["__typename"] == "Workspace", workspace
    entries = {e["name"]: e for e in workspace["locationEntries"]}
    assert set(entries) == {LOCATION}, entries
    entry = entries[LOCATION]
    if entry["loadStatus"] != "LOADED":
        return False
    location = entry["locationOrLoadError"]
    if location["__typename"] == "PythonError":
        pytest.fail(f"code location {LOCATION} failed to load:\n{location['message']}\n{''.join(location['stack'])}")
    assert [r["name"] for r in location["repositories"]] == [REPOSITORY], location
    return True


def _asset_checks(webserver: Webserver, keys: list[list[str]]) -> dict[str, list[dict[str, Any]]]:
    data = webserver.graphql(ASSET_CHECKS_QUERY, {"assetKeys": [{"path": k} for k in keys]})
    out: dict[str, list[dict[str, Any]]] = {}
    for node in data["assetNodes"]:
        checks = node["assetChecksOrError"]
        assert checks["__typename"] == "AssetChecks", checks
        out["/".join(node["assetKey"]["path"])] = checks["checks"]
    return out


def _launch_materialization(webserver: Webserver, keys: list[list[str]], partition: str) -> tuple[str, str]:
    """What the UI sends for Materialize on a selection with one partition: the assets and their checks."""
    checks = _asset_checks(webserver, keys)
    check_selection = [
        {"assetKey": {"path": path.split("/")}, "name": check["name"]}
        for path, specs in checks.items()
        for check in specs
        if not check["jobNames"] or ASSET_JOB in check["jobNames"]
    ]
    params = {
        "mode": "default",
        "runConfigData": {},
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": ASSET_JOB,
            "assetSelection": [{"path": k} for k in keys],
            "assetCheckSelection": check_selection,
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    result = webserver.graphql(LAUNCH_RUN_MUTATION, {"executionParams": params})["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", json.dumps(result, indent=2)
    return str(result["run"]["runId"]), str(result["run"]["status"])


def _run_events(webserver: Webserver, run_id: str) -> str:
    logs = webserver.graphql(RUN_LOGS_QUERY, {"runId": run_id})["logsForRun"]
    if logs["__typename"] != "EventConnection":
        return json.dumps(logs)
    lines = []
    for event in logs["events"]:
        line = f"{event['__typename']} [{event.get('stepKey') or '-'}] {event.get('message') or ''}"
        error = event.get("error") or event.get("pipelineRunFailureError")
        if error:
            line += f"\n{error['message']}\n{''.join(error.get('stack') or [])}"
        lines.append(line)
    return "\n".join(lines)


def _wait_for_run(stack: Stack, run_id: str) -> str:
    last = {"status": "unknown"}

    def finished() -> str | None:
        run = stack.webserver.graphql(RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        last["status"] = run["status"]
        return run["status"] if run["status"] in FINISHED else None

    try:
        status = wait_until(finished, timeout=RUN_TIMEOUT, what=f"run {run_id}", processes=stack.processes)
    except AssertionError as exc:
        events = _run_events(stack.webserver, run_id)
        raise AssertionError(f"run {run_id} is {last['status']}: {exc}\n===== run events =====\n{events}") from exc
    if status != "SUCCESS":
        pytest.fail(
            f"run {run_id} ended {status}\n===== run events =====\n{_run_events(stack.webserver, run_id)}\n"
            + describe(stack.processes)
        )
    return str(status)


def _materializations(webserver: Webserver, run_id: str) -> dict[str, dict[str, Any]]:
    """Asset path → {metadata label → value} of this run's materialization of PARTITION."""
    data = webserver.graphql(
        MATERIALIZATIONS_QUERY,
        {"assetKeys": [{"path": k} for k in (RAW, CLEANSED, QUARANTINE)], "partitions": [PARTITION]},
    )
    out = {}
    for node in data["assetNodes"]:
        ours = [m for m in node["assetMaterializations"] if m["runId"] == run_id]
        assert len(ours) == 1, f"{node['assetKey']}: {len(ours)} materializations by run {run_id}"
        assert ours[0]["partition"] == PARTITION
        entries = ours[0]["metadataEntries"]
        out["/".join(node["assetKey"]["path"])] = {
            e["label"]: e.get("intValue", e.get("floatValue", e.get("text"))) for e in entries
        }
    return out


def _check_evaluation(webserver: Webserver, run_id: str, check_name: str) -> dict[str, Any]:
    """The evaluation `check_name` on cleansed_ads recorded in run `run_id`."""
    variables = {"assetKey": {"path": CLEANSED}, "checkName": check_name}
    executions = webserver.graphql(CHECK_EXECUTIONS_QUERY, variables)["assetCheckExecutions"]
    # Only executions with an evaluation: Dagster also records the *planned* check per partition
    # (2024-01-05) while our unpartitioned check specs store the result with partition None, so
    # each run leaves one extra execution without evaluation that GraphQL reports as SKIPPED.
    ours = [e for e in executions if e["runId"] == run_id and e["evaluation"] is not None]
    assert len(ours) == 1, f"{check_name}: {len(ours)} evaluations by run {run_id}: {executions}"
    return dict(ours[0]["evaluation"])


def test_materialize_through_webserver_and_daemon(stack: Stack) -> None:
    """Materialize ads for one day as the UI does; the run is queued, run by the daemon, and checked."""
    webserver = stack.webserver
    assert stack.webserver.server_info()["dagster_webserver_version"]

    check_names = {c["name"] for c in _asset_checks(webserver, [CLEANSED])["marketing/cleansed_ads"]}
    assert {"error_rate", "rule_cost_min", "parseable_rows", "cleansing_rules"} <= check_names, check_names

    _land(stack.intelligence_home)
    run_id, status = _launch_materialization(webserver, [RAW, CLEANSED, QUARANTINE], PARTITION)
    assert status == "QUEUED"  # the QueuedRunCoordinator holds it until the daemon dequeues it
    _wait_for_run(stack, run_id)

    # On disk: one Parquet file per partition in the lake and in the quarantine; nothing dropped.
    home = stack.intelligence_home
    accepted = pl.read_parquet(home / "lake" / "marketing" / "cleansed_ads" / f"{PARTITION}.parquet")
    quarantined = pl.read_parquet(
        home / "quarantine" / "marketing" / "cleansed_ads_quarantine" / f"{PARTITION}.parquet"
    )
    raw = pl.read_parquet(home / "lake" / "marketing" / "raw_ads" / f"{PARTITION}.parquet")
    assert raw.height == ROWS_IN
    assert (accepted.height, quarantined.height) == (ACCEPTED, QUARANTINED)
    assert accepted.height + quarantined.height == raw.height
    assert sorted(accepted["click_id"].to_list()) == ["c1", "c2", "c3", "c5"]
    assert set(accepted["channel"].cast(pl.String).to_list()) == {"paid_search", "display"}
    assert quarantined["click_id"].to_list() == ["c4"]
    assert quarantined["_stage"].to_list() == ["contract"]
    assert "cost" in quarantined["_rule"].item()

    # Through GraphQL: the materializations of this run carry the row counts the UI shows.
    metadata = _materializations(webserver, run_id)
    assert metadata["marketing/raw_ads"]["dagster/row_count"] == ROWS_IN
    assert metadata["marketing/cleansed_ads"]["dagster/row_count"] == ACCEPTED
    assert metadata["marketing/cleansed_ads_quarantine"]["dagster/row_count"] == QUARANTINED
    assert metadata["marketing/cleansed_ads"]["rows_in"] == ROWS_IN
    assert metadata["marketing/cleansed_ads"]["rejected_rows"] == QUARANTINED

    # The checks: the cost rule caught one row; 1 of 5 (20 %) is above the 10 % error threshold.
    cost_min = _check_evaluation(webserver, run_id, "rule_cost_min")
    assert (cost_min["success"], cost_min["severity"]) == (False, "WARN")
    assert "1 of 5 rows rejected" in cost_min["description"]
    error_rate = _check_evaluation(webserver, run_id, "error_rate")
    assert (error_rate["success"], error_rate["severity"]) == (False, "ERROR")
    rate = {e["label"]: e.get("floatValue") for e in error_rate["metadataEntries"]}["error_rate"]
    assert rate == pytest.approx(QUARANTINED / ROWS_IN)
    for passing in ("parseable_rows", "cleansing_rules"):
        assert _check_evaluation(webserver, run_id, passing)["success"] is True, passing
    # What the asset page shows: each check's latest execution is this run's (not a SKIPPED plan).
    # If a RUNNING landing sensor ever materializes this partition too, this is where it will show.
    checks = _asset_checks(webserver, [CLEANSED])["marketing/cleansed_ads"]
    latest = {c["name"]: c["executionForLatestMaterialization"] for c in checks}
    expected = {name: "SUCCEEDED" for name in latest} | {"rule_cost_min": "FAILED", "error_rate": "FAILED"}
    assert {n: (e or {}).get("status") for n, e in latest.items()} == expected
    assert {(e or {}).get("runId") for e in latest.values()} == {run_id}, latest


@pytest.mark.parametrize(
    ("command", "success"),
    [
        (["dagster", "definitions", "validate", "-w", "workspace.yaml"], "All code locations passed validation"),
        (["dg", "check", "defs"], "All definitions loaded successfully"),
    ],
    ids=["dagster-definitions-validate", "dg-check-defs"],
)
def test_definitions_validate(tmp_path: Path, command: list[str], success: str) -> None:
    """The headless checks the CLIs offer: the code location loads, with a temp DAGSTER_HOME."""
    env = _env(_dagster_home(tmp_path), tmp_path / "intelligence_home")
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)  # else dg warns that the active venv is not the project's
    result = subprocess.run(
        [str(VENV_BIN / command[0]), *command[1:]],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert success in output, output
