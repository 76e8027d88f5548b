"""The landing sensor: exactly once per set of files, nothing missed, bad landings reported, bounded work.

Real files in tmp_path, a real temp Dagster instance, the real `landing_sensor` through
`build_sensor_context(...)` + `evaluate_tick` (what the daemon calls), and `LandingWatcher.scan` with a
controlled clock where a race has to be staged. The fuzz test lands 2,000 hostile files, ticks the
sensor repeatedly, then runs what it requested through the real IO managers and checks that
rows in = accepted + quarantined for every source and day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import random
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from intelligence import sensors as sensors_module
from intelligence.definitions import defs
from intelligence.landing_watch import SETTLE_SECONDS, LandingWatcher, Rejection
from intelligence.resources import build_resources
from intelligence.sensors import MARKETING_SOURCES, REJECTED_KEY, _source_keys, landing_sensor
from intelligence.settings import Settings

ADS_HEADER = "click_id,cookie_id,campaign,channel,cost,ts\n"
HEADERS = {
    "ads": ["click_id", "cookie_id", "campaign", "channel", "cost", "ts"],
    "social": ["event_id", "cookie_id", "social_handle", "platform", "campaign", "event_type", "ts"],
    "crm": ["record_type", "customer_id", "email_hash", "signup_ts", "order_id", "amount", "currency", "ts"],
    "web": [
        "session_id",
        "cookie_id",
        "customer_id",
        "click_id",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "landing_page",
        "ts",
        "goal_completions",
    ],
    "email": ["message_id", "email_hash", "campaign", "event_type", "ts"],
}
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


# -- helpers ----------------------------------------------------------------------------------------


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def land(path: Path, content: str | bytes, mtime: float | None = None) -> Path:
    """Write a landing file; its mtime defaults to a minute ago (settled), as an uploader's would be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    stamp = time.time() - 60 if mtime is None else mtime
    os.utime(path, ns=(_ns(stamp), _ns(stamp)))
    return path


def ads_csv(*click_ids: str, day: str = "2024-01-02") -> str:
    rows = "".join(f"{c},k-{c},winter,display,0.50,{day}T08:00:00Z\n" for c in click_ids)
    return ADS_HEADER + rows


def set_mtime(path: Path, seconds: float) -> None:
    os.utime(path, ns=(_ns(seconds), _ns(seconds)), follow_symlinks=False)


def age_folders(root: Path, seconds_ago: float = 30) -> None:
    """Make every folder under `root` look settled (a folder touched just now is listed again)."""
    stamp = time.time() - seconds_ago
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        set_mtime(folder, stamp)


def tick(instance: dg.DagsterInstance, resources: dict[str, Any], cursor: str | None) -> Any:
    """One evaluation of the real sensor, as the daemon runs it (its SensorExecutionData)."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=resources)
    return landing_sensor.evaluate_tick(context)


def run_keys(data: Any) -> list[str]:
    return sorted(r.run_key for r in data.run_requests)


def requested_days(request: dg.RunRequest) -> list[str]:
    if request.partition_key:
        return [request.partition_key]
    start = dt.date.fromisoformat(request.tags["dagster/asset_partition_range_start"])
    end = dt.date.fromisoformat(request.tags["dagster/asset_partition_range_end"])
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def source_of(request: dg.RunRequest) -> str:
    raw = [k for k in request.asset_selection or [] if k.path[-1].startswith("raw_")]
    assert len(raw) == 1, request
    return raw[0].path[-1].removeprefix("raw_")


def runnable_assets() -> list[dg.AssetsDefinition]:
    return [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]


def execute(
    requests: Iterable[dg.RunRequest], instance: dg.DagsterInstance, resources: dict[str, Any]
) -> dg.ExecuteInProcessResult:
    """Run the union of the requests' selections over the span of their days, in one run (what the
    requested runs would do, grouped to keep the test fast)."""
    requests = list(requests)
    keys = {k for r in requests for k in r.asset_selection or []}
    days = sorted({d for r in requests for d in requested_days(r)})
    tags = (
        {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
        if len(days) > 1
        else {}
    )
    result = dg.materialize(
        runnable_assets(),
        selection=dg.AssetSelection.assets(*keys),
        instance=instance,
        resources=resources,
        partition_key=days[0] if len(days) == 1 else None,
        tags=tags,
        run_config=QUIET,
    )
    assert result.success
    return result


@pytest.fixture
def resources(home: Settings) -> dict[str, Any]:
    home.landing.mkdir(parents=True)
    return build_resources(home)


# -- exactly once -----------------------------------------------------------------------------------


def test_second_tick_without_changes_requests_nothing(
    home: Settings, instance: dg.DagsterInstance, resources: dict[str, Any]
) -> None:
    land(home.landing / "ads" / "2024-01-02" / "ads_01.csv", ads_csv("c1", "c2"))
    land(home.landing / "email" / "2024-01-02" / "email_01.csv", "message_id,email_hash,campaign,event_type,ts\n")
    age_folders(home.landing)

    first = tick(instance, resources, None)
    assert {source_of(r) for r in first.run_requests} == {"ads", "email"}
    assert all(r.partition_key == "2024-01-02" for r in first.run_requests)
    assert len(set(run_keys(first))) == 2

    second = tick(instance, resources, first.cursor)
    assert second.run_requests == []
    third = tick(instance, resources, second.cursor)
    assert third.run_requests == []


def test_a_day_already_being_materialized_waits_for_that_run_and_is_then_read_once(
    home: Settings, instance: dg.DagsterInstance, resources: dict[str, Any]
) -> None:
    """Someone clicked Materialize (or a backfill runs) for a day whose files the sensor has not seen yet:
    no second run races it for the same partition; once it is over, the files it read are not read again."""
    land(home.landing / "ads" / "2024-01-02" / "ads_01.csv", ads_csv("a", "b"))
    land(home.landing / "ads" / "2024-01-03" / "ads_01.csv", ads_csv("c", day="2024-01-03"))
    age_folders(home.landing)
    manual = dg.RunRequest(partition_key="2024-01-02", asset_selection=_source_keys("ads", "standard"))
    running = instance.create_run_for_job(
        job_def=defs.resolve_implicit_global_asset_job_def(),
        asset_selection=frozenset(manual.asset_selection or []),
        tags={"dagster/partition": "2024-01-02"},
        status=dg.DagsterRunStatus.STARTED,  # as a run the daemon has just launched
    )

    first = tick(instance, resources, None)
    assert [(source_of(r), requested_days(r)) for r in first.run_requests] == [("ads", ["2024-01-03"])]
    waiting = tick(instance, resources, first.cursor)  # still running: still waiting
    assert waiting.run_requests == []

    # That run ends (here: it is the in-process run below that does the work) having read the day's files.
    instance.report_run_canceled(running)
    execute([manual], instance, resources)
    after = tick(instance, resources, waiting.cursor)
    assert after.run_requests == []  # already read by that run
    assert tick(instance, resources, after.cursor).run_requests == []


RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_runs_writing_the_cleansed_or_strict_partition_count_and_stuck_runs_stop_holding_folders_back(
    home: Settings, instance: dg.DagsterInstance, resources: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    land(home.landing / "ads" / "2024-01-02" / "ads_01.csv", ads_csv("a", "b"))
    land(home.landing / "web" / "2024-01-02" / "web_01.csv", ",".join(HEADERS["web"]) + "\n")
    age_folders(home.landing)
    job = defs.resolve_implicit_global_asset_job_def()
    strict_web = [
        dg.AssetKey(["marketing", "strict_cleansed_web"]),
        dg.AssetKey(["marketing", "strict_cleansed_web_quarantine"]),
    ]
    for keys in (_source_keys("ads", "standard")[1:], strict_web):
        instance.create_run_for_job(  # a UI run of cleansed_ads alone; a reroute run of strict web, as a range
            job_def=job,
            asset_selection=frozenset(keys),
            tags={
                "dagster/asset_partition_range_start": "2024-01-01",
                "dagster/asset_partition_range_end": "2024-01-03",
            },
            status=dg.DagsterRunStatus.STARTED,
        )
    first = tick(instance, resources, None)
    assert first.run_requests == []

    monkeypatch.setattr(sensors_module, "STUCK_AFTER", dt.timedelta(0))  # those runs are now "hours old"
    second = tick(instance, resources, first.cursor)
    assert sorted(source_of(r) for r in second.run_requests) == ["ads", "web"]


def test_replays_and_lost_cursor_give_the_same_run_keys_and_late_files_one_new_run(
    home: Settings, instance: dg.DagsterInstance, resources: dict[str, Any]
) -> None:
    """Dagster launches a run key once: equal keys on replay and restart make the sensor exactly-once."""
    days = ("2024-01-02", "2024-01-03", "2024-01-05")
    for day in days:
        land(home.landing / "ads" / day / "ads_01.csv", ads_csv("a", "b", day=day))
        land(home.landing / "web" / day / "web_01.csv", ",".join(HEADERS["web"]) + "\n")
    age_folders(home.landing)

    first = tick(instance, resources, None)
    keys = run_keys(first)
    assert keys and len(set(keys)) == len(keys)
    covered = {(source_of(r), d) for r in first.run_requests for d in requested_days(r)}
    assert covered == {(s, d) for s in ("ads", "web") for d in days}

    # A new day, then the same tick replayed twice from the same old cursor: identical run keys.
    land(home.landing / "ads" / "2024-01-09" / "ads_01.csv", ads_csv("z", day="2024-01-09"))
    age_folders(home.landing)
    replay_a, replay_b = tick(instance, resources, first.cursor), tick(instance, resources, first.cursor)
    assert run_keys(replay_a) == run_keys(replay_b)
    assert [(source_of(r), requested_days(r)) for r in replay_a.run_requests] == [("ads", ["2024-01-09"])]

    # A restart that lost its cursor before the runs ran: the unchanged folders give the same keys
    # as before (Dagster drops them as already launched); only the new day is new.
    restarted = run_keys(tick(instance, resources, None))
    assert sorted(restarted) == sorted([*keys, *run_keys(replay_a)])

    # Once the requested runs have read the files, a lost cursor requests nothing for them at all.
    execute([*first.run_requests, *replay_a.run_requests], instance, resources)
    assert tick(instance, resources, None).run_requests == []

    # A late file for an old day: exactly one new request, for that day, with a new run key.
    land(home.landing / "ads" / "2024-01-03" / "ads_late01.csv", ads_csv("late", day="2024-01-03"))
    age_folders(home.landing)
    late = tick(instance, resources, replay_a.cursor)
    assert [(source_of(r), requested_days(r)) for r in late.run_requests] == [("ads", ["2024-01-03"])]
    assert late.run_requests[0].run_key not in set(restarted)
    assert tick(instance, resources, late.cursor).run_requests == []
    execute(late.run_requests, instance, resources)
    raw = pl.read_parquet(home.lake / "marketing" / "raw_ads" / "2024-01-03.parquet")
    assert sorted(raw["click_id"].to_list()) == ["a", "b", "late"]


# -- nothing missed (scan level, controlled clock) ----------------------------------------------------


def test_files_with_equal_mtimes_are_all_seen(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    stamp = time.time() - 100
    for name in ("a.csv", "b.csv", "c.csv"):
        land(root / "ads" / "2024-01-02" / name, ads_csv(name), mtime=stamp)
    watcher = LandingWatcher(root, MARKETING_SOURCES)
    scan = watcher.scan(None, now=stamp + 60)
    assert [c.folder for c in scan.changes] == ["ads/2024-01-02"]
    assert [f[0] for f in scan.changes[0].files] == ["a.csv", "b.csv", "c.csv"]
    assert len({f[2] for f in scan.changes[0].files}) == 1  # one mtime for all three

    # A fourth file with the very same mtime, in the same folder, later: still seen.
    land(root / "ads" / "2024-01-02" / "d.csv", ads_csv("d"), mtime=stamp)
    again = watcher.scan(scan.cursor, now=stamp + 120)
    assert [f[0] for f in again.changes[0].files] == ["a.csv", "b.csv", "c.csv", "d.csv"]


def test_a_file_landing_during_a_tick_is_seen_on_the_next_tick(tmp_path: Path) -> None:
    """The worst case: the file lands after the folder was listed, keeps its old mtime (copied with
    `cp -p`), and the folder's mtime does not move (a coarse filesystem clock)."""
    root = tmp_path / "landing"
    folder = root / "ads" / "2024-01-02"
    base = time.time() - 1000
    land(folder / "a.csv", ads_csv("a"), mtime=base - 500)
    set_mtime(folder, base)

    class LandsDuringListing(LandingWatcher):
        """The real watcher; a file arrives right after its folder was listed (a concurrent uploader)."""

        def _list(self, rel: str, now: float, rejections: list[Rejection]) -> tuple[list[tuple[str, int, int]], bool]:
            listed = super()._list(rel, now, rejections)
            if not (folder / "b.csv").exists():
                land(folder / "b.csv", ads_csv("b"), mtime=base - 500)
                set_mtime(folder, base)  # same clock granule as before: mtime unchanged
            return listed

    watcher = LandsDuringListing(root, MARKETING_SOURCES)
    first = watcher.scan(None, now=base + 0.5)
    assert [f[0] for f in first.changes[0].files] == ["a.csv"]
    second = watcher.scan(first.cursor, now=base + 60)
    assert [c.folder for c in second.changes] == ["ads/2024-01-02"]
    assert [f[0] for f in second.changes[0].files] == ["a.csv", "b.csv"]
    assert watcher.scan(second.cursor, now=base + 120).changes == []

    # And the plain race: the folder's mtime moves on while it is listed (a new file, a new mtime).
    class LandsWithNewMtime(LandingWatcher):
        def _list(self, rel: str, now: float, rejections: list[Rejection]) -> tuple[list[tuple[str, int, int]], bool]:
            listed = super()._list(rel, now, rejections)
            if not (folder / "c.csv").exists():
                land(folder / "c.csv", ads_csv("c"), mtime=base + 100)
                set_mtime(folder, base + 100)
            return listed

    racing = LandsWithNewMtime(root, MARKETING_SOURCES)
    cursor = second.cursor
    set_mtime(folder, base + 50)  # something touched the folder (e.g. a removed temp file)
    third = racing.scan(cursor, now=base + 200)
    assert third.changes == []  # the same two files
    fourth = racing.scan(third.cursor, now=base + 300)
    assert [f[0] for f in fourth.changes[0].files] == ["a.csv", "b.csv", "c.csv"]


def test_very_young_files_are_deferred_then_taken(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    now = time.time()
    land(root / "ads" / "2024-01-02" / "old.csv", ads_csv("o"), mtime=now - 100)
    land(root / "ads" / "2024-01-02" / "growing.csv", ads_csv("g"), mtime=now - SETTLE_SECONDS / 4)
    land(root / "ads" / "2024-01-03" / "growing.csv", ads_csv("g"), mtime=now - SETTLE_SECONDS / 4)
    watcher = LandingWatcher(root, MARKETING_SOURCES)
    first = watcher.scan(None, now=now)
    assert [(c.folder, [f[0] for f in c.files]) for c in first.changes] == [("ads/2024-01-02", ["old.csv"])]
    later = watcher.scan(first.cursor, now=now + SETTLE_SECONDS + 1)
    assert sorted((c.folder, tuple(f[0] for f in c.files)) for c in later.changes) == [
        ("ads/2024-01-02", ("growing.csv", "old.csv")),
        ("ads/2024-01-03", ("growing.csv",)),
    ]
    assert watcher.scan(later.cursor, now=now + 60).changes == []


def test_tick_cost_grows_with_new_files_not_with_history(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    old = time.time() - 3600
    start = dt.date(2024, 1, 1)
    for source in MARKETING_SOURCES:
        for offset in range(40):
            for n in range(3):
                land(root / source / (start + dt.timedelta(days=offset)).isoformat() / f"f{n}.csv", "x\n", mtime=old)
    age_folders(root, seconds_ago=3000)
    watcher = LandingWatcher(root, MARKETING_SOURCES)
    now = time.time()
    first = watcher.scan(None, now=now)
    assert (first.folders_seen, first.folders_listed, len(first.changes)) == (200, 200, 200)

    idle = watcher.scan(first.cursor, now=now + 30)
    assert (idle.folders_listed, idle.changes) == (0, [])

    land(root / "ads" / "2024-01-05" / "late.csv", "x\n", mtime=old)
    land(root / "crm" / "2024-02-09" / "new.csv", "x\n", mtime=old)
    land(root / "crm" / "2024-02-10" / "new.csv", "x\n", mtime=old)
    for folder in ("ads/2024-01-05", "crm/2024-02-09", "crm/2024-02-10"):
        set_mtime(root / folder, now - 100)
    busy = watcher.scan(idle.cursor, now=now + 60)
    assert busy.folders_listed == 3
    assert sorted(c.folder for c in busy.changes) == ["ads/2024-01-05", "crm/2024-02-09", "crm/2024-02-10"]


def test_a_backlog_drains_in_bounded_chunks_without_losing_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    old = time.time() - 3600
    for source in MARKETING_SOURCES:
        for offset in range(20):
            land(root / source / f"2024-03-{offset + 1:02d}" / "f.csv", "x\n", mtime=old)
    age_folders(root, seconds_ago=3000)
    watcher = LandingWatcher(root, MARKETING_SOURCES, max_folders_per_tick=30)
    cursor: dict[str, Any] | None = None
    seen: list[str] = []
    listed = []
    for _ in range(10):
        scan = watcher.scan(cursor, now=time.time())
        cursor = scan.cursor
        seen += [c.folder for c in scan.changes]
        listed.append(scan.folders_listed)
        if not scan.more:
            break
    assert listed == [30, 30, 30, 10]
    assert sorted(seen) == sorted({*seen}) and len(seen) == 100


# -- bad names and bad places ---------------------------------------------------------------------------


def test_bad_names_and_places_never_crash_and_are_reported_once(
    home: Settings, instance: dg.DagsterInstance, resources: dict[str, Any], tmp_path: Path
) -> None:
    landing = home.landing
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(ads_csv("stolen"))
    land(landing / "ads" / "2024-01-02" / "good.csv", ads_csv("g1", "g2"))
    land(landing / "ads" / "notadate" / "x.csv", ads_csv("n"))
    land(landing / "ads" / "2024-02-30" / "x.csv", ads_csv("n"))
    land(landing / "ads" / "stray.csv", ads_csv("s"))
    land(landing / "README.txt", "hello")
    land(landing / "tiktok" / "2024-01-02" / "x.csv", "a,b\n1,2\n")
    land(landing / "ads" / "2024-01-02" / "notes.txt", "not data")
    (landing / "ads" / "2024-01-02" / "nested").mkdir()
    (landing / "ads" / "2024-01-02" / "evil.csv").symlink_to(outside / "secret.csv")
    (landing / "ads" / "2024-01-02" / "dangling.csv").symlink_to(outside / "nowhere.csv")
    (landing / "ads" / "2024-01-04").symlink_to(outside, target_is_directory=True)
    os.mkfifo(landing / "ads" / "2024-01-02" / "pipe.csv")  # reading it would block a naive sensor
    age_folders(landing)

    first = tick(instance, resources, None)
    reasons = {e.metadata["path"].value: e.metadata["reason"].value for e in first.asset_events}
    assert all(e.asset_key == REJECTED_KEY and isinstance(e, dg.AssetObservation) for e in first.asset_events)
    expected = {
        "ads/notadate": "not a date",
        "ads/2024-02-30": "not a date",
        "ads/stray.csv": "day folder",
        "README.txt": "outside the expected layout",
        "tiktok": "unknown source",
        "ads/2024-01-02/notes.txt": "unsupported file type",
        "ads/2024-01-02/nested": "a folder where files are expected",
        "ads/2024-01-02/evil.csv": "out of the landing root",
        "ads/2024-01-02/dangling.csv": "out of the landing root",
        "ads/2024-01-04": "symlink",
        "ads/2024-01-02/pipe.csv": "not a regular file",
    }
    for path, phrase in expected.items():
        assert path in reasons, f"{path} not reported: {reasons}"
        assert phrase in reasons[path], (path, reasons[path])
    assert len(reasons) == len(first.asset_events) == len(expected)

    # The good file is still requested, alone.
    assert [(source_of(r), requested_days(r)) for r in first.run_requests] == [("ads", ["2024-01-02"])]

    # Reported once: the next ticks are quiet, even though the bad entries are still there.
    second = tick(instance, resources, first.cursor)
    assert (second.asset_events, second.run_requests) == ([], [])

    # Recorded as the daemon records a tick's asset events: observations of landing/rejected.
    for event in first.asset_events:
        instance.report_runless_asset_event(event)
    observed = instance.fetch_observations(REJECTED_KEY, limit=100).records
    assert {r.asset_observation.metadata["path"].value for r in observed if r.asset_observation} == set(expected)

    # The run reads only the good file: no symlink target, no pipe (which would block).
    execute(first.run_requests, instance, resources)
    raw = pl.read_parquet(home.lake / "marketing" / "raw_ads" / "2024-01-02.parquet")
    assert sorted(raw["click_id"].to_list()) == ["g1", "g2"]


def _scan_rejections_as(uid: int | None, root: Path) -> list[tuple[str, str]]:
    """The watcher's rejections for `root`, scanned in a forked child that first drops to `uid` (if given).

    A fork, not a new interpreter: the unprivileged user may not be able to reach this Python at all
    (a pyenv under /root), and the child needs nothing but the already imported watcher.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            scan = LandingWatcher(root, MARKETING_SOURCES).scan(None, now=time.time() + 10)
            os.write(write, json.dumps([[r.path, r.reason] for r in scan.rejections]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return [(path, reason) for path, reason in json.loads(payload)]


def test_an_unreadable_file_is_reported() -> None:
    """Root reads a chmod 000 file anyway, so as root the scan runs as `nobody` (in a forked child)."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)  # the landing root must be reachable by the unprivileged scanner
        root = Path(folder) / "landing"
        land(root / "ads" / "2024-01-02" / "locked.csv", ads_csv("x"), mtime=time.time() - 100)
        for path in (root, root / "ads", root / "ads" / "2024-01-02"):
            path.chmod(0o755)
        (root / "ads" / "2024-01-02" / "locked.csv").chmod(0)
        uid = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else None
        assert _scan_rejections_as(uid, root) == [("ads/2024-01-02/locked.csv", "unreadable: permission denied")]


# -- fuzz -------------------------------------------------------------------------------------------------

FUZZ_FILES = 2000
FUZZ_DAYS = ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")
ODD_NAMES = (
    "données été 📈 {n}",
    "my file ({n})",
    "a..b.{n}",
    "{n}.csv.csv",
    "-dash-{n}",
    "quote'\"{n}",
    "pct%20#hash{n}",
    "back\\slash{n}",
    "new\nline{n}",
    "tab\t{n}",
    "ÆØÅ-ß-ø-{n}",
)


def _value(rng: random.Random, column: str, day: str, junk: bool = True) -> str:
    choice = rng.random() if junk else 1.0
    if choice < 0.05:
        return ""
    if choice < 0.1:
        return rng.choice(["N/A", "null", "-1", "1e309", "NaN", "not-a-date", "2024-02-30T10:00:00Z", "💥", '"'])
    if column in ("ts", "signup_ts"):
        return f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z"
    if column in ("cost", "amount"):
        return f"{rng.uniform(-1, 50):.2f}"
    if column == "goal_completions":
        return str(rng.randrange(-1, 4))
    if column == "record_type":
        return rng.choice(["customer", "order", "Order", "refund"])
    if column == "currency":
        return rng.choice(["USD", "EUR", "GBP", "usd", "JPY"])
    if column in ("event_type",):
        return rng.choice(["send", "open", "click", "impression", "engagement", "CLICK"])
    if column == "platform":
        return rng.choice(["facebook", "instagram", "x", "Myspace"])
    if column == "channel":
        return rng.choice(["paid_search", "display", "video", "Paid Search", "radio"])
    return f"{column[:3]}-{rng.randrange(10**6)}"


def _csv(rng: random.Random, source: str, day: str) -> bytes:
    header = list(HEADERS[source])
    kind = rng.randrange(10)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 400))
    if kind == 1:  # wrong headers: renamed, missing, shuffled, duplicated, or none at all
        mangled = rng.choice(
            [
                [h.upper() for h in header],
                header[:-2],
                rng.sample(header, len(header)),
                [*header, header[0]],
                ["a", "b", "c"],
                [],
            ]
        )
        header = mangled or header
        if not mangled:
            return b"\n".join(b"1,2,3" for _ in range(rng.randrange(5)))
    rows = []
    for _ in range(rng.randrange(0, 15)):
        values = [_value(rng, c, day) for c in HEADERS[source]]
        if rng.random() < 0.15:  # ragged
            values = values[: rng.randrange(len(values))] if rng.random() < 0.5 else [*values, "extra", "more"]
        rows.append(",".join(f'"{v}"' if "," in v else v for v in values))
    text = ",".join(header) + "\n" + "\n".join(rows) + ("\n" if rows else "")
    if kind == 2:
        return text.replace("\n", "\r\n").encode()
    if kind == 3:
        return text.encode("utf-16")
    if kind == 4:
        return ("café," + text).encode("latin-1", errors="replace")
    if kind == 5:
        data = bytearray(text.encode())
        for _ in range(3):
            if data:
                data[rng.randrange(len(data))] = rng.choice([0, 0xFF, 0xC3, 0x80])
        return bytes(data)
    if kind == 6:
        return b"\xef\xbb\xbf" + text.encode()
    return text.encode()


def _jsonl(rng: random.Random, day: str) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 400))
    lines = []
    for _ in range(rng.randrange(0, 15)):
        record: Any = {c: _value(rng, c, day) or None for c in HEADERS["social"]}
        roll = rng.random()
        if roll < 0.1:
            record = rng.choice([42, "text", None, [1, 2], {"nested": {"a": 1}}, True])
        elif roll < 0.2:
            record.pop(rng.choice(list(record)))
        elif roll < 0.3:
            record["surprise"] = {"deep": [1, {"x": None}]}
        elif roll < 0.35:
            record["ts"] = 1704449000
        line = json.dumps(record, ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.1:
            line = line[: rng.randrange(1, max(2, len(line)))]  # truncated
        lines.append(line)
    text = "\n".join(lines)
    if kind == 1:
        return text.encode("utf-16")
    if kind == 2:
        return text.replace("\n", "\r\n").encode() + b"\n\n\n"
    return text.encode()


def _fuzz_name(rng: random.Random, n: int, suffix: str) -> str:
    roll = rng.random()
    if roll < 0.55:
        return f"file_{n}{suffix}"
    if roll < 0.85:
        return rng.choice(ODD_NAMES).format(n=n) + (suffix.upper() if rng.random() < 0.2 else suffix)
    if roll < 0.9:
        return ("L" * rng.randrange(150, 240))[: 250 - len(str(n)) - len(suffix)] + str(n) + suffix
    if roll < 0.95:
        return f".hidden_{n}{suffix}"  # an upload in flight: never read
    return f"f{n}" + rng.choice([".txt", ".parquet", ".csv.gz", "", ".", ".CSV ", ".jsonl~"])


def _land_fuzz(root: Path, rng: random.Random, first: int, count: int) -> None:
    for n in range(first, first + count):
        roll = rng.random()
        source = rng.choice(MARKETING_SOURCES)
        day = rng.choice(FUZZ_DAYS)
        suffix = ".jsonl" if source == "social" and rng.random() < 0.85 else ".csv"
        data = _jsonl(rng, day) if suffix == ".jsonl" else _csv(rng, source, day)
        if roll < 0.9:
            folder = root / source / day
        elif roll < 0.93:
            folder = root / rng.choice(["tiktok", "Ads", "ads ", "unknown", "é"]) / day
        elif roll < 0.96:
            folder = root / source / rng.choice(["latest", "2024-1-5", "2024-13-01", "2024-01-01 (copy)", "99"])
        elif roll < 0.98:
            folder = root / source / day / rng.choice(["nested", "2024-01-01", ".tmp"])
        else:
            folder = root / source
        land(folder / _fuzz_name(rng, n, suffix), data)


def test_fuzzed_landing_never_crashes_the_sensor_and_every_row_is_accounted_for(
    home: Settings, instance: dg.DagsterInstance, resources: dict[str, Any]
) -> None:
    rng = random.Random(20241203)
    landing = home.landing
    # Every day folder gets one well-formed file, so every source/day has rows to account for.
    for source in MARKETING_SOURCES:
        for day in FUZZ_DAYS:
            suffix = ".jsonl" if source == "social" else ".csv"
            good = (
                "\n".join(json.dumps({c: _value(rng, c, day, junk=False) for c in HEADERS["social"]}) for _ in range(5))
                if source == "social"
                else ",".join(HEADERS[source])
                + "\n"
                + "\n".join(",".join(_value(rng, c, day, junk=False) for c in HEADERS[source]) for _ in range(5))
            )
            land(landing / source / day / f"good{suffix}", good + "\n")
    landed = len(MARKETING_SOURCES) * len(FUZZ_DAYS)

    cursor: str | None = None
    requests: list[dg.RunRequest] = []
    rejected: list[str] = []
    for ticks, batch in enumerate((700, 700, FUZZ_FILES - 1400 - landed, 0, 0)):
        if batch:
            _land_fuzz(landing, rng, first=landed, count=batch)
            landed += batch
        age_folders(landing, seconds_ago=30 - ticks)  # a new folder mtime per batch
        data = tick(instance, resources, cursor)  # an exception here fails the test: zero crashes allowed
        cursor = data.cursor
        requests += data.run_requests
        rejected += [e.metadata["path"].value for e in data.asset_events]
        if batch == 0:
            assert data.run_requests == [] and data.asset_events == []
    assert landed == FUZZ_FILES
    assert len(rejected) == len(set(rejected)) > 0  # each bad entry reported once
    assert any(p.startswith("tiktok") for p in rejected)
    assert any("latest" in p for p in rejected)
    assert len({r.run_key for r in requests}) == len(requests)
    covered = {(source_of(r), d) for r in requests for d in requested_days(r)}
    assert covered == {(s, d) for s in MARKETING_SOURCES for d in FUZZ_DAYS}

    # One run for everything the sensor requested, through the real IO managers.
    execute(requests, instance, resources)
    for source in MARKETING_SOURCES:
        for day in FUZZ_DAYS:
            raw = pl.read_parquet(home.lake / "marketing" / f"raw_{source}" / f"{day}.parquet")
            accepted = pl.read_parquet(home.lake / "marketing" / f"cleansed_{source}" / f"{day}.parquet")
            quarantined = pl.read_parquet(
                home.quarantine / "marketing" / f"cleansed_{source}_quarantine" / f"{day}.parquet"
            )
            assert raw.height >= 5, (source, day)
            assert raw.height == accepted.height + quarantined.height, (source, day)
            assert quarantined["_reason"].null_count() == 0
