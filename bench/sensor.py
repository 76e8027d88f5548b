"""Benchmark of the landing sensor: a tick costs what the *new* files cost, not every file ever landed.

    .venv/bin/python bench/sensor.py                          # 100,000 historical files + 100 new, 5 repeats
    .venv/bin/python bench/sensor.py --files 20000 --repeats 3  # quicker

A temp landing zone holds `--files` tiny CSV files, spread over the five marketing sources and
`--files / (5 × --per-folder)` day folders (`<source>/<YYYY-MM-DD>/<file>.csv`, 20 files a folder by
default), all settled (mtimes in the past). Measured, in this order, in the same process:

- cold start: ticks from an empty cursor until drained, in bounded chunks of `max_folders_per_tick`
  folders (`LandingWatcher.scan`); their sum is the time to build the cursor;
- the same cold start through the real `landing_sensor` (`evaluate_tick` on a temp SQLite instance:
  cursor JSON, a raw-materialization lookup per changed folder, run requests);
- an idle tick (nothing new);
- `--new` new files per repeat (half as late files in random old day folders, half in new day
  folders), then one tick: `LandingWatcher.scan` alone and the full `landing_sensor` tick; medians;
- a naive full listing of everything (`os.walk` + a `stat` per file, what a sensor without a cursor
  must do to notice a late file), median of the repeats, and the ratios;
- the cursor's size as the sensor stores it (zlib-compressed JSON) and as plain JSON.

Results are printed as a table and written as JSON to `bench/results/` (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from intelligence.landing_watch import LandingWatcher, load_cursor  # noqa: E402
from intelligence.sensors import MARKETING_SOURCES  # noqa: E402

START = dt.date(2024, 1, 1)  # the default first partition; 1,000 days reach 2026-09
CONTENT = b"click_id,cookie_id,campaign,channel,cost,ts\nc1,k1,winter,display,0.50,2024-01-01T08:00:00Z\n"
TARGET_SECONDS = 1.0


def _settle(path: Path, seconds_ago: float = 120.0) -> None:
    stamp = time.time() - seconds_ago
    os.utime(path, (stamp, stamp))


def build_history(root: Path, files: int, per_folder: int) -> tuple[int, int]:
    """`files` settled files in day folders of the five sources; returns (folders, days)."""
    days = max(1, files // (len(MARKETING_SOURCES) * per_folder))
    written = 0
    folders = []
    for offset in range(days):
        for source in MARKETING_SOURCES:
            folder = root / source / (START + dt.timedelta(days=offset)).isoformat()
            folder.mkdir(parents=True)
            for n in range(per_folder):
                if written == files:
                    break
                path = folder / f"{source}_{n:02d}.csv"
                path.write_bytes(CONTENT)
                _settle(path)
                written += 1
            folders.append(folder)
    for folder in folders:  # landed long ago: folders settled too
        _settle(folder)
    return len(folders), days


def land_new(root: Path, count: int, days: int, rng: random.Random, repeat: int) -> None:
    """Half late files in random old folders, half in new day folders after the history."""
    late = count // 2
    for i in range(late):
        source = rng.choice(MARKETING_SOURCES)
        folder = root / source / (START + dt.timedelta(days=rng.randrange(days))).isoformat()
        path = folder / f"{source}_late_{repeat}_{i}.csv"
        path.write_bytes(CONTENT)
        _settle(path)
    new_day = (START + dt.timedelta(days=days + repeat)).isoformat()
    for i in range(count - late):
        source = MARKETING_SOURCES[i % len(MARKETING_SOURCES)]
        folder = root / source / new_day
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{source}_{repeat}_{i}.csv"
        path.write_bytes(CONTENT)
        _settle(path)


def naive_listing(root: Path) -> int:
    """What a cursor-less sensor does each tick: walk everything and stat every file."""
    seen = 0
    for folder, _, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(folder, name))
            seen += 1
    return seen


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


class SensorTicks:
    """The real landing_sensor, evaluated as the daemon does, on a temp instance and settings."""

    def __init__(self, home: Path, instance: dg.DagsterInstance):
        from intelligence.definitions import defs
        from intelligence.resources import build_resources
        from intelligence.sensors import landing_sensor
        from intelligence.settings import Settings

        self.defs, self.sensor, self.instance = defs, landing_sensor, instance
        self.resources = build_resources(Settings(home=home, start_date=START))

    def tick(self, cursor: str | None) -> Any:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=cursor, definitions=self.defs, resources=self.resources
        )
        return self.sensor.evaluate_tick(context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000, help="historical files")
    parser.add_argument("--per-folder", type=int, default=20, help="files per day folder")
    parser.add_argument("--new", type=int, default=100, help="new files per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-folders", type=int, default=2000, help="the watcher's per-tick bound")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    rows: list[tuple[str, str, str, str]] = []  # step, ticks, seconds, detail
    report: dict[str, Any] = {"files": args.files, "new": args.new, "repeats": args.repeats}

    with tempfile.TemporaryDirectory(prefix="bench-sensor-") as tmp:
        home = Path(tmp) / "home"
        landing = home / "landing"
        build_seconds, (folders, days) = timed(lambda: build_history(landing, args.files, args.per_folder))
        print(
            f"landing: {args.files:,} files in {folders:,} folders ({len(MARKETING_SOURCES)} sources × {days:,} days"
            f" × {args.per_folder}), written in {build_seconds:.1f} s; per-tick bound {args.max_folders:,} folders",
            flush=True,
        )
        watcher = LandingWatcher(landing, MARKETING_SOURCES, max_folders_per_tick=args.max_folders)

        # 1. Cold start: drain an empty cursor in bounded chunks.
        cursor: dict[str, Any] | None = None
        cold: list[float] = []
        changes = 0
        while True:
            seconds, scan = timed(lambda c=cursor: watcher.scan(c))
            cold.append(seconds)
            cursor, changes = scan.cursor, changes + len(scan.changes)
            if not scan.more:
                break
        assert changes == folders, (changes, folders)
        rows.append(("cold start: scan per tick", str(len(cold)), f"{statistics.median(cold):.3f}", "median"))
        rows.append(("cold start: build the cursor", str(len(cold)), f"{sum(cold):.3f}", f"{changes:,} folders"))
        report["cold_scan_seconds"] = cold

        (Path(tmp) / "dagster_home").mkdir()
        with dg.instance_for_test(temp_dir=str(Path(tmp) / "dagster_home")) as instance:
            sensor = SensorTicks(home, instance)
            sensor_cursor: str | None = None
            full_cold: list[float] = []
            requests = 0
            for _ in range(len(cold) + 2):
                seconds, data = timed(lambda c=sensor_cursor: sensor.tick(c))
                full_cold.append(seconds)
                sensor_cursor, requests = data.cursor, requests + len(data.run_requests)
                if len((load_cursor(data.cursor) or {})["folders"]) >= folders:
                    break
            rows.append(
                (
                    "cold start: landing_sensor tick",
                    str(len(full_cold)),
                    f"{statistics.median(full_cold):.3f}",
                    f"median; {requests} run requests (one per source and run of days)",
                )
            )
            report["cold_sensor_seconds"] = full_cold

            idle_seconds, idle = timed(lambda: watcher.scan(cursor))
            rows.append(("idle tick: scan", "1", f"{idle_seconds:.3f}", f"{idle.folders_listed} folders listed"))
            cursor = idle.cursor
            sensor_cursor = sensor.tick(sensor_cursor).cursor  # settle the sensor's cursor the same way

            # 2. New files, one tick each, repeated: the scan alone and the whole sensor tick.
            scans, ticks, naive, listed = [], [], [], []
            for repeat in range(args.repeats):
                land_new(landing, args.new, days, rng, repeat)
                seconds, scan = timed(lambda c=cursor: watcher.scan(c))
                assert sum(len(c.files) for c in scan.changes) >= args.new
                scans.append(seconds)
                listed.append(scan.folders_listed)
                cursor = scan.cursor
                seconds, data = timed(lambda c=sensor_cursor: sensor.tick(c))
                assert data.run_requests, "the new files must be requested"
                ticks.append(seconds)
                sensor_cursor = data.cursor
                naive_seconds, seen = timed(lambda: naive_listing(landing))
                naive.append(naive_seconds)
            scan_median, tick_median, naive_median = (statistics.median(x) for x in (scans, ticks, naive))
            rows.append(
                (
                    f"{args.new} new files: scan",
                    str(args.repeats),
                    f"{scan_median:.3f}",
                    f"median (min {min(scans):.3f}, max {max(scans):.3f}); {statistics.median(listed):.0f} folders"
                    " listed",
                )
            )
            rows.append(
                (
                    f"{args.new} new files: landing_sensor tick",
                    str(args.repeats),
                    f"{tick_median:.3f}",
                    f"median (min {min(ticks):.3f}, max {max(ticks):.3f}); target ≤ {TARGET_SECONDS:.0f} s: "
                    + ("met" if tick_median <= TARGET_SECONDS else "MISSED"),
                )
            )
            rows.append(("naive os.walk + stat of all", str(args.repeats), f"{naive_median:.3f}", f"{seen:,} files"))
            cursor_bytes = len((sensor_cursor or "").encode())
            plain_bytes = len(json.dumps(load_cursor(sensor_cursor), separators=(",", ":")).encode())
            rows.append(("cursor size", "", "", f"{cursor_bytes:,} bytes stored ({plain_bytes:,} as plain JSON)"))
            rows.append(
                (
                    "ratio naive / incremental",
                    "",
                    "",
                    f"scan {naive_median / scan_median:.1f}x, full tick {naive_median / tick_median:.1f}x",
                )
            )
            report.update(
                new_scan_seconds=scans,
                new_tick_seconds=ticks,
                naive_seconds=naive,
                folders_listed=listed,
                cursor_bytes=cursor_bytes,
                folders=folders,
            )

    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  {'ticks':>5}  {'seconds':>8}  detail")
    for step, count, seconds, detail in rows:
        print(f"{step:<{width}}  {count:>5}  {seconds:>8}  {detail}")

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"sensor-{stamp}.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"written {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
