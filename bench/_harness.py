"""Shared plumbing of the benchmarks: cached synthetic worlds, one fresh process per contender, tables, JSON.

Not a benchmark itself (`run_all.py` skips files starting with `_`). Every contender runs in its own process
(`python bench/<bench>.py --run <contender> ...`), imports its libraries before the clock starts and prints one
JSON line: wall and CPU seconds, peak RSS of that process (`ru_maxrss`, so DuckDB's and polars' native memory
count; `VmHWM`) and the RSS it had after its imports, so the working memory of the computation is visible too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CACHE = Path(os.environ.get("INTELLIGENCE_BENCH_CACHE", Path(tempfile.gettempdir()) / "intelligence-bench"))


# ------------------------------------------------------------------------------------ cached worlds


def world_home(start: dt.date, days: int, people: int, seed: int = 7) -> Path:
    """An INTELLIGENCE_HOME with landing files and ground truth of the seeded marketing world, generated once.

    Cached under CACHE by its parameters; a `.complete` marker says the generator finished. No flaky days:
    the benchmarks time the standard route.
    """
    folder = CACHE / f"marketing_{start.isoformat()}_{days}d_{people}p_s{seed}"
    home = folder / "home"
    if (folder / ".complete").exists():
        return home
    if folder.exists():
        shutil.rmtree(folder)
    home.mkdir(parents=True)
    print(f"generating the marketing world ({days} days from {start}, {people:,} people) into {folder} ...", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "intelligence.synthetic.marketing",
            "--home",
            str(home),
            "--start",
            start.isoformat(),
            "--days",
            str(days),
            "--people",
            str(people),
            "--seed",
            str(seed),
            "--flaky-days",
            "",
        ],
        check=True,
        cwd=ROOT,
    )
    (folder / ".complete").write_text(f"generated in {time.perf_counter() - started:.1f}s\n")
    return home


def landing_rows(home: Path, days: Sequence[dt.date] | None = None) -> dict[str, int]:
    """Data lines per source (headers excluded) in the landing files of `days` (all days if None)."""
    import polars as pl

    files = pl.read_parquet(home / "truth" / "marketing" / "files.parquet")
    if days is not None:
        files = files.filter(pl.col("day").is_in(list(days)))
    return {s: int(n) for s, n in files.group_by("source").agg(pl.col("rows").sum()).sort("source").iter_rows()}


# ------------------------------------------------------------------------------------ child side


def peak_rss_mb() -> float:
    """This process's peak RSS. `VmHWM` belongs to the process's own address space; `ru_maxrss` can carry the
    parent's peak into a child started with vfork (what subprocess does), so it is only the fallback."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_measure(work: Callable[[], dict[str, Any] | None]) -> None:
    """In a contender's process: run `work` once, print one JSON line with its measurements."""
    rss_before = peak_rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    extra = work() or {}
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = peak_rss_mb()
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mb": peak, "import_mb": rss_before, **extra}, default=str))


def sys_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def step_seconds(instance: Any, run_id: str) -> dict[str, float]:
    """Seconds from STEP_START to STEP_SUCCESS per step of a run, from the instance's event log."""
    starts: dict[str, float] = {}
    out: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS" and event.step_key in starts:
            out[event.step_key] = round(entry.timestamp - starts[event.step_key], 3)
    return out


# ------------------------------------------------------------------------------------ parent side


def chosen_contenders(parser: Any, text: str, known: Sequence[str]) -> list[str]:
    """The comma-separated `--contenders` value, checked against the benchmark's own."""
    contenders = text.split(",")
    unknown = set(contenders) - set(known)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {tuple(known)}")
    return contenders


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def run_contenders(
    script: Path,
    contenders: Sequence[str],
    repeats: int,
    args: Sequence[str],
    env: dict[str, str] | None = None,
    once: Sequence[str] = (),
) -> dict[str, list[dict[str, Any]]]:
    """Every contender `repeats` times (those in `once` a single time), interleaved so that background load
    hits each alike; one fresh process per run."""
    records: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    child_env = {**os.environ, **(env or {})}
    for round_ in range(repeats):
        for contender in contenders:
            if round_ and contender in once:
                continue
            command = [sys.executable, str(script), "--run", contender, *args]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=child_env)
            if done.returncode != 0:
                sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
                raise SystemExit(f"contender {contender} failed (exit {done.returncode})")
            record = json.loads(done.stdout.strip().splitlines()[-1])
            record["process_wall"] = time.perf_counter() - started
            records[contender].append(record)
            print(
                f"  {contender:<18} run {round_ + 1}: {record['wall']:7.2f} s, peak {record['peak_mb']:7.0f} MB",
                flush=True,
            )
    return records


def summarise(records: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    out = {}
    for contender, runs in records.items():
        if not runs:
            continue
        out[contender] = {
            "median_s": statistics.median(r["wall"] for r in runs),
            "min_s": min(r["wall"] for r in runs),
            "cpu_s": statistics.median(r["cpu"] for r in runs),
            "peak_mb": max(r["peak_mb"] for r in runs),
            "work_mb": max(r["peak_mb"] - r["import_mb"] for r in runs),
            "runs": len(runs),
        }
    return out


def table(
    summary: dict[str, dict[str, float]],
    references: Sequence[str],
    rows: int | None = None,
    rows_label: str = "rows/s",
) -> str:
    """One line per contender: median/min wall, CPU, peak and working RSS, throughput, ratios to references."""
    head = f"{'contender':<20}{'median s':>9}{'min s':>8}{'CPU s':>8}{'peak MB':>9}{'work MB':>9}"
    if rows:
        head += f"{rows_label:>12}"
    for ref in references:
        head += f"{'t/' + ref:>13}{'mem/' + ref:>13}"
    lines = [head]
    for name, s in summary.items():
        line = f"{name:<20}{s['median_s']:9.2f}{s['min_s']:8.2f}{s['cpu_s']:8.2f}{s['peak_mb']:9.0f}{s['work_mb']:9.0f}"
        if rows:
            line += f"{rows / s['median_s']:12,.0f}"
        for ref in references:
            r = summary.get(ref)
            if r is None:
                line += f"{'':>13}{'':>13}"
                continue
            line += f"{s['median_s'] / r['median_s']:12.2f}x{s['peak_mb'] / r['peak_mb']:12.2f}x"
        lines.append(line)
    return "\n".join(lines)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}_{stamp}.json"
    payload = {"bench": name, "at": stamp, "load": load(), "python": sys.version.split()[0], **payload}
    path.write_text(json.dumps(payload, indent=2, default=str))
    (RESULTS / f"{name}_latest.json").write_text(json.dumps(payload, indent=2, default=str))
    return path


def verdict(label: str, ok: bool, detail: str) -> str:
    return f"  [{'met ' if ok else 'MISS'}] {label}: {detail}"
