"""Every benchmark in bench/, one after the other, each in its own process (`make bench`).

    .venv/bin/python bench/run_all.py            # full sizes (about an hour on 2 cores, most of it the 10M worlds)
    .venv/bin/python bench/run_all.py --quick    # small sizes, a few minutes: checks the benchmarks still run
    .venv/bin/python bench/run_all.py sensor telemetry   # only these

Each benchmark prints its own table and ratios and leaves JSON in bench/results/ (`<name>_latest.json`).
Files starting with `_` are plumbing, not benchmarks. A benchmark that fails is reported and the others still run;
the exit status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The arguments that make each benchmark small; the full size is each script's own default.
QUICK_ARGS: dict[str, list[str]] = {
    "sensor": ["--files", "20000", "--repeats", "3"],
    "attribution_models": ["--touches", "1000000", "--repeats", "1"],
    "attribution": ["--quick"],
    "raw_cleansed": ["--quick"],
    "marketing_graph": ["--quick"],
    "telemetry": ["--quick"],
    "telemetry_detectors": ["--quick"],
}


def benchmarks() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(benchmarks())})")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(benchmarks()))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)} (have {', '.join(benchmarks())})")
    failed: list[str] = []
    timings: list[tuple[str, float]] = []
    for name in args.names or benchmarks():
        command = [sys.executable, str(HERE / f"{name}.py"), *(QUICK_ARGS.get(name, []) if args.quick else [])]
        print(f"\n===== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        if subprocess.run(command, cwd=HERE.parent).returncode != 0:
            failed.append(name)
        timings.append((name, time.perf_counter() - started))
    print("\n===== done")
    for name, seconds in timings:
        print(f"  {name:<22}{seconds:8.1f} s{'   FAILED' if name in failed else ''}")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
