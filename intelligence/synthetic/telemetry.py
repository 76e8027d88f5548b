"""Seeded generator of labelled infrastructure telemetry (hosts × metrics), with ground truth.

What it simulates, per host:

- a shared *load* curve: a daily profile (peaky or flat, random phase), a weekend dip, a slow trend and slow
  AR(1) wander; every metric of the host follows it;
- the metrics `cpu` (%), `memory` (%), `latency` (ms), `errors` (count per interval), `requests` (count per
  interval) and, optionally, the generic `disk_io` (bursty, heavy-tailed). Noise is heteroscedastic
  (multiplicative for latency and disk_io, Poisson for counts), heavy-tailed on a share of streams (Student-t
  bursts and benign single-point spikes), and some cpu streams are integer-quantised (long flat runs that are
  normal). Some hosts run a daily cron job: a cpu peak at the same hour every day (a seasonal peak, not an
  anomaly);
- benign level shifts: deploys change cpu and latency levels and usually restart the process (memory drops).
  They are NOT labelled anomalies, on purpose: they are the classic source of false positives;
- missing-data gaps (unlabelled, never inside an incident) and optional timestamp jitter;
- injected incidents, each with its true window per affected metric (labels) and a richer truth record:

  ==================== ========================================================== =====================
  pattern              effect                                                     labelled metrics
  ==================== ========================================================== =====================
  service_degradation  latency × (1.25…3.75), error rate up (5 min to 6 h)          latency, errors
  cpu_saturation       cpu pushed towards 100 % (a spike or a plateau, 5 min to    cpu, latency
                       8 h), latency up
  memory_leak          memory climbs steadily for hours, then an error burst and   memory (the climb),
                       a restart (memory drops back)                              errors (the burst)
  traffic_surge        requests × (1.4…4.4), latency and cpu up                    requests, latency, cpu
  silent_failure       one stream goes flat (stuck value) or stops, then recovers  that metric
  ==================== ========================================================== =====================

  Severity is drawn per incident; a share (`subtle_share`) is subtle (a few noise sigmas at most). Onsets are
  sudden or ramped. Incidents start after `warmup_days` and never overlap on one host.

A second generator, `simulate_cloud_streams`, makes independent single streams shaped like real machine and
cloud metrics (no shared hosts), with labelled anomaly onsets; see its docstring.

Output (`generate_telemetry`):

- `landing/telemetry/<host>/<metric>/<YYYY-MM-DD>.csv` with header `timestamp,value`, one file per stream and UTC
  day. Timestamps are ISO 8601 with `Z`; a share (`alt_timestamp_share`) is written in other valid forms: with an
  offset (`+05:30`), naive (meaning UTC) or epoch seconds. Optional defects: duplicated rows, out-of-order rows,
  non-numeric values and blank values;
- `landing/telemetry_labels/<labels_name>.json`: `{"<host>/<metric>": [["start", "end"], ...]}` (ISO, UTC),
  one key per stream (an empty list when the stream has no incident);
- `truth/telemetry/incidents.json`: the config, and per incident the host, pattern, start, end, affected
  metrics, per-metric windows, severity and whether it is subtle.

Landing files (CSVs and the labels file) are created exclusively: an existing file is never overwritten (it is
skipped and counted in the summary). The truth file is outside landing and is replaced atomically.
Everything is deterministic for a given config (seed included). `simulate_telemetry` returns the same data in
memory (clean points, no defects), which the tests and the benchmark use.

The benchmark corpus (`bench/telemetry_detectors.py`, `BENCH_CORPORA` below) is:

- tuning seeds 101, 102, 103: 20 hosts × 6 metrics × 28 days at 5 min (8,064 points per stream, 120 streams,
  about 0.96M points each; 102 with ±5 s timestamp jitter, 103 with half the streams heavy-tailed), plus seed
  111 (8 hosts × 6 metrics, 7 days at 1 min) and seed 121 (12 hosts × 6 metrics, 84 days at 1 h). Defaults
  otherwise: 2 incidents per host on average, 30 % subtle, 1 deploy per host and week, 1 gap per stream and
  week, 3 days of warm-up without incidents (2 at 1 min, 7 at 1 h);
- held-out seeds 201, 202, 203 (5 min), 211 (1 min) and 221 (1 h) with the same shapes, never looked at while
  tuning (3.5M points per set);
- `CLOUD_BENCH_CORPORA`: single-stream corpora from `simulate_cloud_streams` (independent series shaped like
  real machine and cloud metrics: CPU, network and disk bytes, latency, temperature, request and instance
  counts; mostly two weeks long, half without a daily pattern, steps, heavy tails, quantised values, idle
  zeros, 1-4 anomalies each), tuning seeds 301-303 and held-out seeds 401-403, 60 streams each (~0.45M
  points per corpus). Their anomalies mark onsets, so they are meant for NAB-style windows centred on them.

CLI: `python -m intelligence.synthetic.telemetry --home DIR [--seed N --hosts N --days N --cadence SECONDS ...]`.
This module imports nothing from `assets/` or `resources/`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.signal import lfilter

CORE_METRICS: tuple[str, ...] = ("cpu", "memory", "latency", "errors", "requests")
GENERIC_METRIC = "disk_io"
PATTERNS: tuple[str, ...] = (
    "service_degradation",
    "cpu_saturation",
    "memory_leak",
    "traffic_surge",
    "silent_failure",
)
_HOUR = 3600.0
_DAY = 86400.0
_ALT_OFFSETS_MIN = (60, -300, 330, 540, -420)


@dataclass(frozen=True)
class TelemetryConfig:
    """Knobs of the generator. Shares are probabilities per row (defects, timestamp forms) or per stream."""

    seed: int = 0
    hosts: int = 20
    days: int = 28
    start: dt.date = dt.date(2024, 1, 1)
    cadence_seconds: int = 300
    include_generic_metric: bool = True
    incidents_per_host: float = 2.0
    subtle_share: float = 0.3
    deploys_per_week: float = 1.0
    gaps_per_week: float = 1.0
    heavy_tail_share: float = 0.3
    jitter_seconds: int = 0
    warmup_days: float = 3.0
    labels_name: str = "incidents"
    host_prefix: str = "host"
    alt_timestamp_share: float = 0.05
    duplicate_share: float = 0.0
    out_of_order_share: float = 0.0
    non_numeric_share: float = 0.0
    blank_share: float = 0.0

    def __post_init__(self) -> None:
        if self.cadence_seconds < 1:
            raise ValueError(f"cadence_seconds must be >= 1, got {self.cadence_seconds}")
        if self.hosts < 1 or self.days < 1:
            raise ValueError(f"hosts and days must be >= 1, got hosts={self.hosts} days={self.days}")
        shares = {
            "subtle_share": self.subtle_share,
            "heavy_tail_share": self.heavy_tail_share,
            "alt_timestamp_share": self.alt_timestamp_share,
            "duplicate_share": self.duplicate_share,
            "out_of_order_share": self.out_of_order_share,
            "non_numeric_share": self.non_numeric_share,
            "blank_share": self.blank_share,
        }
        for name, share in shares.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {share}")
        if "/" in self.labels_name or not self.labels_name:
            raise ValueError(f"labels_name must be a plain file stem, got {self.labels_name!r}")

    @property
    def metrics(self) -> tuple[str, ...]:
        return (*CORE_METRICS, GENERIC_METRIC) if self.include_generic_metric else CORE_METRICS


@dataclass(frozen=True)
class Incident:
    """One injected incident; `windows` holds the true window of each labelled metric."""

    host: str
    pattern: str
    start: dt.datetime
    end: dt.datetime
    metrics: tuple[str, ...]
    windows: dict[str, tuple[dt.datetime, dt.datetime]]
    severity: float
    subtle: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pattern": self.pattern,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "metrics": list(self.metrics),
            "windows": {m: [_iso(a), _iso(b)] for m, (a, b) in self.windows.items()},
            "severity": round(self.severity, 4),
            "subtle": self.subtle,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Simulation:
    """Clean points (`host, metric, timestamp, value`, sorted), incidents and labels per `host/metric`."""

    points: pl.DataFrame
    incidents: list[Incident]
    labels: dict[str, list[tuple[dt.datetime, dt.datetime]]]
    config: TelemetryConfig


@dataclass(frozen=True)
class GenerationSummary:
    files_written: int
    files_skipped_existing: int
    points: int
    rows_written: int
    streams: int
    incidents: dict[str, int]
    labels_path: str
    truth_path: str
    labels_written: bool
    landing_root: str = ""
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------------
# simulation


def simulate_telemetry(config: TelemetryConfig) -> Simulation:
    """Simulate every stream in memory; deterministic for the config."""
    root = np.random.SeedSequence(config.seed)
    host_seeds = root.spawn(config.hosts)
    start_s = dt.datetime.combine(config.start, dt.time(), tzinfo=dt.UTC).timestamp()
    n = int(config.days * _DAY // config.cadence_seconds)
    t = start_s + np.arange(n, dtype=np.float64) * config.cadence_seconds
    frames: list[pl.DataFrame] = []
    incidents: list[Incident] = []
    width = max(2, len(str(config.hosts - 1)))
    for h in range(config.hosts):
        host = f"{config.host_prefix}-{h:0{width}d}"
        rng = np.random.default_rng(host_seeds[h])
        host_frames, host_incidents = _simulate_host(host, t, config, rng)
        frames.extend(host_frames)
        incidents.extend(host_incidents)
    points = pl.concat(frames, how="vertical") if frames else _empty_points()
    points = points.sort("host", "metric", "timestamp")
    labels: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for key in points.select(pl.concat_str("host", pl.lit("/"), "metric").unique()).to_series().to_list():
        labels[key] = []
    for inc in incidents:
        for metric, window in inc.windows.items():
            labels.setdefault(f"{inc.host}/{metric}", []).append(window)
    labels = {k: sorted(v) for k, v in sorted(labels.items())}
    return Simulation(points=points, incidents=incidents, labels=labels, config=config)


def _empty_points() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "host": pl.String,
            "metric": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "value": pl.Float64,
        }
    )


def _ar1(rng: np.random.Generator, n: int, cadence: float, tau_s: float, sigma: float) -> np.ndarray:
    """Stationary AR(1) noise with correlation time `tau_s` (seconds) and standard deviation `sigma`."""
    phi = math.exp(-cadence / tau_s)
    innov = rng.standard_normal(n) * sigma * math.sqrt(max(1e-12, 1.0 - phi * phi))
    out: np.ndarray = lfilter([1.0], [1.0, -phi], innov)
    out[0] = rng.standard_normal() * sigma
    return out


def _ramp(t: np.ndarray, start: float, end: float, rise_s: float) -> np.ndarray:
    """0 before `start`, rising linearly to 1 over `rise_s`, 1 until `end`, 0 after."""
    r = np.clip((t - start) / max(rise_s, 1.0), 0.0, 1.0)
    return np.where((t >= start) & (t < end), np.maximum(r, 1e-9), 0.0)


@dataclass
class _Host:
    load: np.ndarray
    load_norm: np.ndarray
    cpu_factor: np.ndarray
    lat_factor: np.ndarray
    mem_restarts: list[float]


def _host_load(t: np.ndarray, cfg: TelemetryConfig, rng: np.random.Generator) -> _Host:
    hours = (t % _DAY) / _HOUR
    weekday = ((t // _DAY).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
    peak_hour = rng.uniform(10, 20)
    kappa = rng.uniform(0.4, 2.2)
    daily = np.exp(kappa * (np.cos(2 * np.pi * (hours - peak_hour) / 24.0) - 1.0))
    floor = rng.uniform(0.15, 0.6)
    weekend = rng.uniform(0.45, 1.0)
    weekly = np.where(weekday >= 5, weekend, 1.0)
    days_elapsed = (t - t[0]) / _DAY
    trend = 1.0 + rng.uniform(-0.1, 0.3) * days_elapsed / 30.0
    wander = np.exp(_ar1(rng, t.size, float(t[1] - t[0]) if t.size > 1 else 300.0, 6 * _HOUR, 0.06))
    load = (floor + (1.0 - floor) * daily) * weekly * trend * wander
    load_norm = load / max(float(np.quantile(load, 0.99)), 1e-9)
    # deploys: piecewise-constant factors on cpu and latency, usually a restart (memory drops)
    weeks = (t[-1] - t[0]) / (7 * _DAY) if t.size else 0.0
    n_deploys = rng.poisson(cfg.deploys_per_week * weeks)
    deploy_times = np.sort(rng.uniform(t[0], t[-1], n_deploys)) if t.size else np.empty(0)
    cpu_factor = np.ones_like(t)
    lat_factor = np.ones_like(t)
    restarts: list[float] = []
    for when in deploy_times:
        after = t >= when
        cpu_factor[after] *= rng.uniform(0.75, 1.3)
        lat_factor[after] *= rng.uniform(0.85, 1.25)
        if rng.random() < 0.7:
            restarts.append(float(when))
    return _Host(load=load, load_norm=load_norm, cpu_factor=cpu_factor, lat_factor=lat_factor, mem_restarts=restarts)


def _draw_incidents(
    t: np.ndarray, cfg: TelemetryConfig, rng: np.random.Generator, metrics: Sequence[str]
) -> list[dict[str, Any]]:
    count = rng.poisson(cfg.incidents_per_host)
    lo = t[0] + cfg.warmup_days * _DAY
    hi = t[-1] - 6 * _HOUR
    placed: list[dict[str, Any]] = []
    durations = {
        "service_degradation": (5 * 60, 6 * _HOUR),
        "cpu_saturation": (5 * 60, 8 * _HOUR),
        "memory_leak": (4 * _HOUR, 36 * _HOUR),
        "traffic_surge": (30 * 60, 6 * _HOUR),
        "silent_failure": (1 * _HOUR, 12 * _HOUR),
    }
    for _ in range(count * 4):
        if len(placed) >= count or hi <= lo:
            break
        pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
        d_lo, d_hi = durations[pattern]
        duration = float(np.exp(rng.uniform(math.log(d_lo), math.log(d_hi))))
        duration = max(duration, float(cfg.cadence_seconds))
        start = float(rng.uniform(lo, max(lo, hi - duration)))
        end = start + duration
        if end > hi:
            continue
        if any(start < p["end"] + 12 * _HOUR and end > p["start"] - 12 * _HOUR for p in placed):
            continue
        subtle = bool(rng.random() < cfg.subtle_share)
        severity = float(rng.uniform(0.05, 0.25) if subtle else rng.uniform(0.3, 1.0))
        inc: dict[str, Any] = {
            "pattern": pattern,
            "start": start,
            "end": end,
            "severity": severity,
            "subtle": subtle,
            "rise": min(float(cfg.cadence_seconds * rng.integers(1, 4)), 0.25 * duration),
        }
        if duration >= 2 * _HOUR and rng.random() < 0.3:  # a gradual onset over a share of the incident
            inc["rise"] = duration * rng.uniform(0.1, 0.3)
        if pattern == "silent_failure":
            inc["metric"] = metrics[int(rng.integers(len(metrics)))]
            inc["mode"] = "stop" if rng.random() < 0.4 else "flat"
        if pattern == "memory_leak":
            inc["burst"] = float(rng.uniform(10 * 60, 30 * 60))
        placed.append(inc)
    return sorted(placed, key=lambda p: p["start"])


def _simulate_host(
    host: str, t: np.ndarray, cfg: TelemetryConfig, rng: np.random.Generator
) -> tuple[list[pl.DataFrame], list[Incident]]:
    n = t.size
    cad = float(cfg.cadence_seconds)
    hs = _host_load(t, cfg, rng)
    metrics = cfg.metrics
    incs = _draw_incidents(t, cfg, rng, metrics)
    heavy = {m: bool(rng.random() < cfg.heavy_tail_share) for m in metrics}
    per_interval = cad / 300.0

    # multiplicative incident effects, built up per pattern
    lat_mult = np.ones(n)
    err_mult = np.ones(n)
    req_mult = np.ones(n)
    cpu_push = np.zeros(n)  # fraction of the way to 98 %
    cpu_traffic = np.zeros(n)  # extra load from a traffic surge, as a multiple of the normal load
    mem_add = np.zeros(n)
    restarts = list(hs.mem_restarts)
    for inc in incs:
        s, e, sev, rise = inc["start"], inc["end"], inc["severity"], inc["rise"]
        r = _ramp(t, s, e, rise)
        match inc["pattern"]:
            case "service_degradation":
                lat_mult *= 1.0 + (0.25 + 2.5 * sev) * r
                err_mult *= 1.0 + (1.5 + 25.0 * sev) * r
                req_mult *= 1.0 - 0.05 * sev * r
            case "cpu_saturation":
                cpu_push = np.maximum(cpu_push, (0.35 + 0.65 * sev) * r)
                lat_mult *= 1.0 + (0.2 + 1.5 * sev) * r
            case "traffic_surge":
                factor = 0.4 + 3.0 * sev
                req_mult *= 1.0 + factor * r
                lat_mult *= 1.0 + (0.15 + 1.5 * sev) * r
                cpu_traffic = np.maximum(cpu_traffic, factor * r)
            case "memory_leak":
                frac = np.clip((t - s) / (e - s), 0.0, 1.0) ** rng.uniform(1.0, 1.5)
                inside = (t >= s) & (t < e)
                climb = 20.0 + 60.0 * sev
                mem_add += np.where(inside, climb * frac, 0.0)
                burst = (t >= e - inc["burst"]) & (t < e)
                err_mult *= np.where(burst, 3.0 + 30.0 * sev, 1.0)
                lat_mult *= np.where(burst, 1.0 + 0.5 * sev, 1.0)
                restarts.append(e)
            case _:
                pass

    # cpu
    cpu_idle = rng.uniform(2, 15)
    cpu_span = rng.uniform(15, 55)
    cpu_sigma = rng.uniform(0.5, 4.0)
    cpu_load = hs.load_norm * (1.0 + 0.8 * cpu_traffic)
    cpu = cpu_idle + cpu_span * cpu_load * hs.cpu_factor + _ar1(rng, n, cad, 900.0, cpu_sigma)
    if heavy["cpu"]:
        cpu += np.abs(rng.standard_t(2.5, n)) * cpu_sigma * 0.8
    if rng.random() < 0.3:  # daily cron job: a seasonal peak at the same time each day
        cron_hour = rng.uniform(0, 24)
        cron_len = rng.uniform(10, 30) / 60.0
        hod = (t % _DAY) / _HOUR
        cpu += np.where((hod >= cron_hour) & (hod < cron_hour + cron_len), rng.uniform(15, 40), 0.0)
    cpu = cpu + (98.0 - cpu) * cpu_push - cpu_push * _ar1(rng, n, cad, 900.0, cpu_sigma) * 0.5
    cpu = np.clip(cpu, 0.0, 100.0)
    cpu = np.round(cpu, 0) if rng.random() < 0.2 else np.round(cpu, 2)

    # memory: slow growth between restarts, small sawtooth, leak climbs on top
    mem0 = rng.uniform(25, 65)
    growth = rng.uniform(0.0, 2.0) / _DAY
    last_restart = np.full(n, t[0])
    for when in sorted(restarts):
        last_restart = np.where(t >= when, when, last_restart)
    saw_period = rng.uniform(0.5, 3.0) * _HOUR
    memory = (
        mem0
        + growth * (t - last_restart)
        + rng.uniform(0.0, 1.5) * ((t % saw_period) / saw_period)
        + _ar1(rng, n, cad, 1800.0, rng.uniform(0.1, 0.8))
        + mem_add
    )
    memory = np.round(np.clip(memory, 0.0, 100.0), 2)

    # requests: counts per interval
    req_rate = rng.uniform(50, 5000) * per_interval
    req_noise = np.exp(_ar1(rng, n, cad, 1200.0, rng.uniform(0.03, 0.12)))
    lam_req = req_rate * hs.load * req_noise * req_mult
    requests = rng.poisson(np.maximum(lam_req, 0.0)).astype(np.float64)

    # latency (ms): grows with load, multiplicative heavy-ish noise
    lat0 = rng.uniform(15, 400)
    lat_sigma = rng.uniform(0.05, 0.25)
    lat_load = 1.0 + rng.uniform(0.1, 1.0) * (hs.load_norm * req_mult) ** 2
    latency = lat0 * lat_load * hs.lat_factor * lat_mult * np.exp(_ar1(rng, n, cad, 600.0, lat_sigma))
    if heavy["latency"]:
        spikes = rng.random(n) < 0.002
        latency = np.where(spikes, latency * rng.uniform(2.0, 5.0, n), latency)
    latency = np.round(latency, 1)

    # errors: counts per interval, many zeros for healthy services
    err_mean = float(np.exp(rng.uniform(math.log(0.05), math.log(20.0)))) * per_interval
    lam_err = err_mean * (0.5 + hs.load_norm) * err_mult
    lam_err = np.where(err_mult > 1.0, np.maximum(lam_err, (err_mult - 1.0) * 0.2), lam_err)
    errors = rng.poisson(np.maximum(lam_err, 0.0)).astype(np.float64)

    values: dict[str, np.ndarray] = {
        "cpu": cpu,
        "memory": memory,
        "latency": latency,
        "errors": errors,
        "requests": requests,
    }
    if GENERIC_METRIC in metrics:
        io_sigma = rng.uniform(0.3, 0.8)
        disk = rng.uniform(1, 200) * np.sqrt(hs.load_norm) * np.exp(_ar1(rng, n, cad, 300.0, io_sigma))
        disk *= np.sqrt(req_mult)
        if heavy[GENERIC_METRIC]:
            disk *= np.where(rng.random(n) < 0.01, rng.uniform(3, 10, n), 1.0)
        values[GENERIC_METRIC] = np.round(disk, 2)

    keep = {m: np.ones(n, dtype=bool) for m in metrics}
    incidents: list[Incident] = []
    for inc in incs:
        s, e = inc["start"], inc["end"]
        windows: dict[str, tuple[float, float]] = {}
        detail = ""
        match inc["pattern"]:
            case "service_degradation":
                windows = {"latency": (s, e), "errors": (s, e)}
            case "cpu_saturation":
                windows = {"cpu": (s, e), "latency": (s, e)}
            case "traffic_surge":
                windows = {"requests": (s, e), "latency": (s, e), "cpu": (s, e)}
            case "memory_leak":
                windows = {"memory": (s, e), "errors": (e - inc["burst"], e)}
            case "silent_failure":
                metric, mode = inc["metric"], inc["mode"]
                detail = mode
                inside = (t >= s) & (t < e)
                if mode == "flat":
                    first = int(np.searchsorted(t, s))
                    if first < n:
                        values[metric] = np.where(inside, values[metric][first], values[metric])
                    windows = {metric: (s, e)}
                else:
                    keep[metric] &= ~inside
                    recovery = max(30 * 60.0, 3 * cad)
                    rec = (t >= e) & (t < e + recovery)
                    frac = np.clip((t - e) / recovery, 0.0, 1.0)
                    recovered = values[metric] * (0.2 + 0.8 * frac)
                    if metric in ("errors", "requests"):
                        recovered = np.round(recovered)
                    values[metric] = np.where(rec, np.round(recovered, 2), values[metric])
                    windows = {metric: (s, e + recovery)}
        win_dt = {m: (_from_epoch(a), _from_epoch(b)) for m, (a, b) in windows.items()}
        incidents.append(
            Incident(
                host=host,
                pattern=inc["pattern"],
                start=_from_epoch(s),
                end=_from_epoch(max(b for _, b in windows.values())),
                metrics=tuple(windows),
                windows=win_dt,
                severity=inc["severity"],
                subtle=inc["subtle"],
                detail=detail,
            )
        )

    # unlabelled gaps, kept clear of incidents
    busy = np.zeros(n, dtype=bool)
    for inc in incs:
        busy |= (t >= inc["start"] - 2 * _HOUR) & (t < inc["end"] + 2 * _HOUR)
    weeks = (t[-1] - t[0]) / (7 * _DAY)
    for m in metrics:
        for _ in range(rng.poisson(cfg.gaps_per_week * weeks)):
            length = float(np.exp(rng.uniform(math.log(10 * 60), math.log(4 * _HOUR))))
            gs = float(rng.uniform(t[0], t[-1]))
            gap = (t >= gs) & (t < gs + length)
            if not (gap & busy).any():
                keep[m] &= ~gap

    frames = []
    for m in metrics:
        ts = t[keep[m]]
        jitter = min(cfg.jitter_seconds, (cfg.cadence_seconds - 1) // 2)
        if jitter > 0:  # below half a cadence, so a stream never reorders
            ts = ts + rng.integers(-jitter, jitter + 1, ts.size)
        micros = (np.round(ts) * 1_000_000).astype(np.int64)
        frames.append(
            pl.DataFrame(
                {
                    "host": pl.Series([host] * ts.size, dtype=pl.String),
                    "metric": pl.Series([m] * ts.size, dtype=pl.String),
                    "timestamp": pl.Series(micros).cast(pl.Datetime("us", "UTC")),
                    "value": pl.Series(values[m][keep[m]], dtype=pl.Float64),
                }
            )
        )
    return frames, incidents


def _from_epoch(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(round(seconds), tz=dt.UTC)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------------------
# writing


def generate_telemetry(config: TelemetryConfig, landing_root: Path, truth_root: Path) -> GenerationSummary:
    """Write landing CSVs, the labels JSON and the truth file; never overwrite an existing landing file."""
    sim = simulate_telemetry(config)
    landing_root = Path(landing_root)
    truth_root = Path(truth_root)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 7919]))
    written = skipped = rows_written = 0
    frame = sim.points.with_columns(day=pl.col("timestamp").dt.date())
    for (host, metric, day), part in frame.group_by(["host", "metric", "day"], maintain_order=True):
        path = landing_root / "telemetry" / str(host) / str(metric) / f"{day}.csv"
        text, rows = _render_csv(part, config, rng)
        if _write_exclusive(path, text):
            written += 1
            rows_written += rows
        else:
            skipped += 1
    labels_path = landing_root / "telemetry_labels" / f"{config.labels_name}.json"
    labels_json = {k: [[_iso(a), _iso(b)] for a, b in v] for k, v in sim.labels.items()}
    labels_written = _write_exclusive(labels_path, json.dumps(labels_json, indent=1, sort_keys=True) + "\n")
    truth_path = truth_root / "telemetry" / "incidents.json"
    truth = {
        "config": {k: (str(v) if isinstance(v, dt.date) else v) for k, v in asdict(config).items()},
        "streams": sorted(sim.labels),
        "incidents": [inc.to_json() for inc in sim.incidents],
    }
    _write_atomic(truth_path, json.dumps(truth, indent=1) + "\n")
    counts = {p: 0 for p in PATTERNS}
    for inc in sim.incidents:
        counts[inc.pattern] += 1
    notes = []
    if skipped:
        notes.append(f"{skipped} landing files already existed and were left untouched")
    if not labels_written:
        notes.append(f"labels file {labels_path} already existed and was left untouched")
    return GenerationSummary(
        files_written=written,
        files_skipped_existing=skipped,
        points=sim.points.height,
        rows_written=rows_written,
        streams=len(sim.labels),
        incidents=counts,
        labels_path=str(labels_path),
        truth_path=str(truth_path),
        labels_written=labels_written,
        landing_root=str(landing_root),
        notes=notes,
    )


def _render_csv(part: pl.DataFrame, cfg: TelemetryConfig, rng: np.random.Generator) -> tuple[str, int]:
    micros = part["timestamp"].dt.epoch("us").to_numpy()
    seconds = micros // 1_000_000
    iso = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    stamps = np.char.add(iso.astype(str), "Z").astype(object)
    n = seconds.size
    alt = np.flatnonzero(rng.random(n) < cfg.alt_timestamp_share)
    for i in alt:
        form = int(rng.integers(3))
        when = dt.datetime.fromtimestamp(int(seconds[i]), tz=dt.UTC)
        if form == 0:
            off = _ALT_OFFSETS_MIN[int(rng.integers(len(_ALT_OFFSETS_MIN)))]
            stamps[i] = when.astimezone(dt.timezone(dt.timedelta(minutes=off))).isoformat()
        elif form == 1:
            stamps[i] = when.replace(tzinfo=None).isoformat()
        else:
            stamps[i] = str(int(seconds[i]))
    vals = part["value"].to_numpy()
    text_vals = np.array([_fmt(v) for v in vals], dtype=object)
    for i in np.flatnonzero(rng.random(n) < cfg.non_numeric_share):
        text_vals[i] = ("n/a", "ERR", "#VALUE!", "null?")[int(rng.integers(4))]
    for i in np.flatnonzero(rng.random(n) < cfg.blank_share):
        text_vals[i] = ""
    lines = [f"{a},{b}" for a, b in zip(stamps, text_vals, strict=True)]
    out: list[str] = []
    for line in lines:
        out.append(line)
        if cfg.duplicate_share and rng.random() < cfg.duplicate_share:
            out.append(line)
    if cfg.out_of_order_share:
        for k in range(len(out) - 1):
            if rng.random() < cfg.out_of_order_share:
                out[k], out[k + 1] = out[k + 1], out[k]
    return "timestamp,value\n" + "\n".join(out) + "\n", len(out)


def _fmt(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def _write_exclusive(path: Path, text: str) -> bool:
    """Create `path` with `text`; return False (and leave it alone) when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        try:
            os.link(tmp, path)  # atomic, and fails if the target appeared meanwhile
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)
    return True


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------------------
# single-stream cloud corpus: independent series shaped like real machine and cloud metrics

#: Stream kinds of `simulate_cloud_streams`, named like the metrics they imitate.
CLOUD_KINDS: tuple[str, ...] = (
    "cpu_utilization",
    "network_in",
    "disk_write_bytes",
    "request_latency",
    "machine_temperature",
    "request_count",
    "instance_count",
)
#: Anomaly shapes per kind (a labelled anomaly is one of these at one onset).
CLOUD_ANOMALIES: dict[str, tuple[str, ...]] = {
    "cpu_utilization": ("spike", "level_shift", "saturation", "drop", "variance", "flatline", "ramp"),
    "network_in": ("spike", "level_shift", "drop", "variance"),
    "disk_write_bytes": ("spike", "level_shift", "drop", "variance"),
    "request_latency": ("spike", "level_shift", "variance", "ramp"),
    "machine_temperature": ("ramp", "drop", "level_shift", "spike", "flatline"),
    "request_count": ("drop", "level_shift", "pattern_loss", "spike"),
    "instance_count": ("level_shift", "variance", "drop"),
}


@dataclass(frozen=True)
class CloudConfig:
    """Knobs of `simulate_cloud_streams`: how many independent streams, their cadence and spans (days)."""

    seed: int = 0
    streams: int = 60
    cadence_seconds: int = 300
    span_days: tuple[float, ...] = (14.0, 14.0, 14.0, 14.0, 21.0, 28.0, 42.0, 63.0)
    subtle_share: float = 0.25
    start: dt.date = dt.date(2024, 3, 1)
    gaps_per_week: float = 0.5
    jitter_seconds: int = 0

    def __post_init__(self) -> None:
        if self.cadence_seconds < 1 or self.streams < 1 or not self.span_days or min(self.span_days) < 1:
            raise ValueError(f"need cadence >= 1 s, streams >= 1 and spans >= 1 day, got {self}")
        if not 0.0 <= self.subtle_share <= 1.0:
            raise ValueError(f"subtle_share must be within [0, 1], got {self.subtle_share}")


@dataclass(frozen=True)
class CloudAnomaly:
    """One labelled anomaly of one stream: its shape, onset, end of its effect and severity."""

    host: str
    metric: str
    shape: str
    start: dt.datetime
    end: dt.datetime
    severity: float
    subtle: bool


@dataclass(frozen=True)
class CloudSimulation:
    """Points (`host, metric, timestamp, value`, sorted), anomalies and labels (`[start, end]` per stream)."""

    points: pl.DataFrame
    anomalies: list[CloudAnomaly]
    labels: dict[str, list[tuple[dt.datetime, dt.datetime]]]
    config: CloudConfig


def simulate_cloud_streams(config: CloudConfig) -> CloudSimulation:
    """Independent streams of `CLOUD_KINDS`, 1-4 labelled anomalies each (a few have none); deterministic.

    Unlike `simulate_telemetry` (hosts whose metrics share a load curve and incidents), each stream here stands
    alone, the way public benchmark series do: a random start (time of day and weekday), a span drawn from
    `span_days` (mostly two weeks: little history before the first anomaly), and the traits that make real
    machine and cloud metrics hard — about half without any daily pattern, step changes from deploys and
    autoscaling, heavy-tailed benign spikes, quantised values with long flat runs, idle periods at zero,
    drift, and missing stretches. Benign events (spikes, steps, gaps) stay out of the labelled windows, so
    every one of them is a chance for a false positive. Anomaly onsets fall in the last 85 % of a stream
    (after NAB's probation), at least one NAB window width (10 % of the span / count) apart.
    """
    root = np.random.SeedSequence([config.seed, 4099])
    seeds = root.spawn(config.streams)
    base = dt.datetime.combine(config.start, dt.time(), tzinfo=dt.UTC).timestamp()
    frames: list[pl.DataFrame] = []
    anomalies: list[CloudAnomaly] = []
    labels: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for i in range(config.streams):
        rng = np.random.default_rng(seeds[i])
        frame, found = _cloud_stream(i, base, config, rng)
        frames.append(frame)
        anomalies.extend(found)
        key = f"{frame['host'][0]}/{frame['metric'][0]}"
        labels[key] = sorted((a.start, a.end) for a in found)
    points = pl.concat(frames, how="vertical").sort("host", "metric", "timestamp")
    return CloudSimulation(points=points, anomalies=anomalies, labels=dict(sorted(labels.items())), config=config)


def _daily_shape(hod: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A daily profile in [0, 1]: a peak at a random hour, peaky or broad."""
    kappa = rng.uniform(0.5, 3.0)
    peak = rng.uniform(0, 24)
    shape = np.exp(kappa * (np.cos(2 * np.pi * (hod - peak) / 24.0) - 1.0))
    return (shape - shape.min()) / max(float(np.ptp(shape)), 1e-9)


def _cloud_stream(
    i: int, base: float, cfg: CloudConfig, rng: np.random.Generator
) -> tuple[pl.DataFrame, list[CloudAnomaly]]:
    kind = CLOUD_KINDS[int(rng.integers(len(CLOUD_KINDS)))]
    cad = float(cfg.cadence_seconds)
    days = float(cfg.span_days[int(rng.integers(len(cfg.span_days)))])
    n = max(int(days * _DAY // cad), 10)
    t0 = base + float(rng.integers(0, int(7 * _DAY // cad))) * cad
    t = t0 + np.arange(n, dtype=np.float64) * cad
    hod = (t % _DAY) / _HOUR
    weekday = ((t // _DAY).astype(np.int64) + 3) % 7
    seasonal = rng.random() < {"request_count": 0.95, "machine_temperature": 0.4}.get(kind, 0.5)
    daily = _daily_shape(hod, rng) if seasonal else np.zeros(n)
    weekly = np.where(weekday >= 5, rng.uniform(0.5, 1.0), 1.0) if seasonal and rng.random() < 0.6 else 1.0
    load = (daily * weekly) if seasonal else np.zeros(n)

    # anomaly onsets (indices) in the last 85 %, a NAB window width apart
    count = int(rng.choice([0, 1, 2, 3, 4], p=[0.05, 0.3, 0.33, 0.19, 0.13]))
    width = int(0.1 * n / max(count, 1))
    onsets: list[int] = []
    for _ in range(50 * count):
        if len(onsets) == count:
            break
        k = int(rng.integers(int(0.15 * n), int(0.95 * n)))
        if all(abs(k - o) > width for o in onsets):
            onsets.append(k)
    onsets.sort()
    quiet = np.zeros(n, dtype=bool)  # benign events stay out of the label windows
    for o in onsets:
        quiet[max(0, o - width // 2 - 6) : o + width // 2 + 6] = True

    def benign_times(rate_per_day: float) -> np.ndarray:
        k = rng.poisson(rate_per_day * days)
        idx = rng.integers(0, n, k)
        return np.sort(idx[~quiet[idx]])

    def steps(rate_per_week: float, lo: float, hi: float) -> np.ndarray:
        factor = np.ones(n)
        for k in benign_times(rate_per_week / 7.0):
            factor[k:] *= rng.uniform(lo, hi)
        return factor

    def spikes(rate_per_day: float, lo: float, hi: float) -> np.ndarray:
        mult = np.ones(n)
        for k in benign_times(rate_per_day):
            mult[k : k + int(rng.integers(1, 3))] = rng.uniform(lo, hi)
        return mult

    drift = 1.0 + (rng.uniform(-0.3, 0.3) * (t - t0) / (n * cad) if rng.random() < 0.4 else 0.0)
    heavy = rng.random() < 0.5
    up_shapes = CLOUD_ANOMALIES[kind]
    round_to = 0.0
    match kind:
        case "cpu_utilization":
            level = float(np.exp(rng.uniform(np.log(1.5), np.log(50.0))))
            sigma = level * rng.uniform(0.03, 0.2) + 0.05
            clean = level * (1.0 + rng.uniform(0.3, 1.5) * load) * steps(0.8, 0.6, 1.6) * drift
            clean = clean + _ar1(rng, n, cad, rng.uniform(300, 3600), sigma)
            if heavy:
                clean = clean + np.abs(rng.standard_t(2.5, n)) * sigma * rng.uniform(0.3, 1.5)
            if heavy or rng.random() < 0.3:
                clean = clean * spikes(rng.uniform(0.2, 2.0), 1.5, 4.0)
            lo_clip, hi_clip = 0.0, 100.0
            round_to = float(rng.choice([0.001, 0.001, 0.1, 0.5, 1.0]))
        case "network_in" | "disk_write_bytes":
            level = float(10 ** rng.uniform(4, 8))
            noise = np.exp(_ar1(rng, n, cad, rng.uniform(300, 1800), rng.uniform(0.2, 0.8)))
            clean = level * (0.3 + rng.uniform(0.5, 2.0) * load) * noise * steps(0.5, 0.5, 2.0)
            clean = clean * spikes(rng.uniform(0.5, 5.0), 3.0, 20.0)
            if kind == "disk_write_bytes" and rng.random() < 0.5:  # idle at zero between bursts
                busy = _ar1(rng, n, cad, rng.uniform(600, 7200), 1.0) > rng.uniform(-0.5, 1.0)
                clean = np.where(busy, clean, 0.0)
            sigma = level * 0.3
            lo_clip, hi_clip = 0.0, np.inf
            round_to = 1.0
        case "request_latency":
            level = float(np.exp(rng.uniform(np.log(5.0), np.log(300.0))))
            noise = np.exp(_ar1(rng, n, cad, rng.uniform(300, 1800), rng.uniform(0.05, 0.35)))
            clean = level * (1.0 + rng.uniform(0.1, 0.8) * load) * noise * steps(0.7, 0.8, 1.3) * drift
            if heavy:
                clean = clean * spikes(rng.uniform(1.0, 8.0), 2.0, 6.0)
            sigma = level * 0.15
            lo_clip, hi_clip = 0.0, np.inf
            round_to = float(rng.choice([0.001, 0.1, 1.0]))
        case "machine_temperature":
            level = rng.uniform(55.0, 90.0)
            sigma = rng.uniform(0.3, 2.0)
            clean = level + rng.uniform(2.0, 8.0) * load + _ar1(rng, n, cad, rng.uniform(3600, 6 * 3600), 3 * sigma)
            clean = clean + _ar1(rng, n, cad, cad * 1.5, sigma) + (drift - 1.0) * 10.0
            lo_clip, hi_clip = -50.0, 150.0
            round_to = float(rng.choice([0.001, 0.01, 0.1]))
        case "request_count":
            level = float(np.exp(rng.uniform(np.log(5.0), np.log(2000.0))))
            mult = (0.15 + load if seasonal else 1.0) * np.exp(_ar1(rng, n, cad, 3600, rng.uniform(0.03, 0.15)))
            clean = level * mult * steps(0.3, 0.8, 1.25) * spikes(rng.uniform(0.0, 1.0), 1.5, 3.0)
            sigma = float(np.sqrt(level))
            lo_clip, hi_clip = 0.0, np.inf
            round_to = 1.0
        case _:  # instance_count: an autoscaling group, integer and step-like
            level = float(rng.integers(1, 12))
            desired = level * (1.0 + rng.uniform(0.0, 1.5) * load) * steps(0.3, 0.7, 1.4)
            desired = desired + _ar1(rng, n, cad, 4 * 3600, 0.3)
            clean = np.empty(n)
            current = round(float(desired[0]))
            for k in range(n):  # scale only on a clear change (hysteresis): long flat runs
                if abs(desired[k] - current) > 0.75:
                    current = round(float(desired[k]))
                clean[k] = current
            sigma = 0.5
            lo_clip, hi_clip = 0.0, np.inf
            round_to = 1.0

    values = np.asarray(clean, dtype=np.float64).copy()
    lo5, hi95, top = (float(q) for q in np.quantile(values, [0.05, 0.95, 0.999]))
    spread = max(hi95 - lo5, 4.0 * sigma, 1e-6)
    found: list[tuple[str, int, int, float, bool]] = []
    for o in onsets:
        shape = up_shapes[int(rng.integers(len(up_shapes)))]
        subtle = bool(rng.random() < cfg.subtle_share)
        sev = float(rng.uniform(0.15, 0.4) if subtle else rng.uniform(0.5, 2.0))
        length = int(np.exp(rng.uniform(np.log(_HOUR), np.log(48 * _HOUR))) // cad) + 1
        end = min(n, o + length)
        seg = slice(o, end)
        sign = -1.0 if rng.random() < 0.3 else 1.0
        match shape:
            case "spike":
                end = min(n, o + int(rng.integers(1, 4)))
                seg = slice(o, end)
                peak = (hi95 if subtle else max(hi95, top)) + sev * spread
                if sign < 0 and kind == "machine_temperature":
                    peak = lo5 - sev * spread
                values[seg] = peak * rng.uniform(0.9, 1.1, end - o)
            case "level_shift":
                if rng.random() < 0.3:
                    end = n
                    seg = slice(o, end)
                if kind in ("network_in", "disk_write_bytes", "request_count", "request_latency"):
                    values[seg] *= (1.0 + 2.0 * sev) ** sign
                else:
                    values[seg] += sign * sev * spread
            case "saturation":
                end = min(n, o + max(2, length // 4))
                seg = slice(o, end)
                values[seg] = values[seg] + (rng.uniform(92, 100) - values[seg]) * min(1.0, 0.4 + sev / 2)
            case "drop":
                end = min(n, o + max(2, length // 4))
                seg = slice(o, end)
                floor = lo5 - sev * spread * 0.5 if kind == "machine_temperature" else 0.0
                values[seg] = floor + (values[seg] - floor) * (0.05 if not subtle else 0.6) * rng.random()
            case "variance":
                seg_len = end - o
                local = np.median(values[max(0, o - 288) : o]) if o > 0 else values[o]
                values[seg] = (
                    local + (values[seg] - local) * (1.0 + 3.0 * sev) + rng.normal(0, sev * spread * 0.5, seg_len)
                )
            case "ramp":
                rise = np.linspace(0.0, 1.0, end - o) ** rng.uniform(1.0, 2.0)
                values[seg] += sign * 1.5 * sev * spread * rise
            case "flatline":
                values[seg] = values[o]
            case "pattern_loss":
                values[seg] = np.median(values[max(0, o - 2016) : o]) * rng.uniform(0.9, 1.1)
        found.append((shape, o, end, sev, subtle))
    values = np.clip(values, lo_clip, hi_clip)
    if round_to:
        values = np.round(values / round_to) * round_to
    if kind in ("network_in", "disk_write_bytes", "request_count", "instance_count"):
        values = np.round(values)

    keep = np.ones(n, dtype=bool)
    busy = np.zeros(n, dtype=bool)
    for _, o, end, _, _ in found:
        busy[max(0, o - int(2 * _HOUR // cad)) : end + int(2 * _HOUR // cad)] = True
    for _ in range(rng.poisson(cfg.gaps_per_week * days / 7.0)):
        g0 = int(rng.integers(0, n))
        g1 = g0 + int(np.exp(rng.uniform(np.log(600), np.log(6 * _HOUR))) // cad) + 1
        if not busy[g0:g1].any():
            keep[g0:g1] = False
    keep[0] = True
    ts = t[keep]
    jitter = min(cfg.jitter_seconds, (cfg.cadence_seconds - 1) // 2)
    if jitter > 0:
        ts = ts + rng.integers(-jitter, jitter + 1, ts.size)
    host = f"{kind.split('_')[0]}-{i:03d}"
    frame = pl.DataFrame(
        {
            "host": pl.Series([host] * ts.size, dtype=pl.String),
            "metric": pl.Series([kind] * ts.size, dtype=pl.String),
            "timestamp": pl.Series((np.round(ts) * 1_000_000).astype(np.int64)).cast(pl.Datetime("us", "UTC")),
            "value": pl.Series(values[keep], dtype=pl.Float64),
        }
    )
    out = [
        CloudAnomaly(
            host=host,
            metric=kind,
            shape=shape,
            start=_from_epoch(t[o]),
            end=_from_epoch(t[min(end, n) - 1]),
            severity=round(sev, 4),
            subtle=subtle,
        )
        for shape, o, end, sev, subtle in found
    ]
    return frame, out


# --------------------------------------------------------------------------------------------------------------
# benchmark corpus and CLI

#: The labelled corpora of `bench/telemetry_detectors.py`: (set, config). Do not tune on the "holdout" set.
BENCH_CORPORA: tuple[tuple[str, TelemetryConfig], ...] = (
    ("tuning", TelemetryConfig(seed=101, jitter_seconds=0)),
    ("tuning", TelemetryConfig(seed=102, jitter_seconds=5)),
    ("tuning", TelemetryConfig(seed=103, heavy_tail_share=0.5)),
    ("tuning", TelemetryConfig(seed=111, hosts=8, days=7, cadence_seconds=60, warmup_days=2.0)),
    ("tuning", TelemetryConfig(seed=121, hosts=12, days=84, cadence_seconds=3600, warmup_days=7.0)),
    ("holdout", TelemetryConfig(seed=201, jitter_seconds=0)),
    ("holdout", TelemetryConfig(seed=202, jitter_seconds=5)),
    ("holdout", TelemetryConfig(seed=203, heavy_tail_share=0.5)),
    ("holdout", TelemetryConfig(seed=211, hosts=8, days=7, cadence_seconds=60, warmup_days=2.0)),
    ("holdout", TelemetryConfig(seed=221, hosts=12, days=84, cadence_seconds=3600, warmup_days=7.0)),
)

#: The single-stream cloud corpora of the benchmark (`simulate_cloud_streams`), split the same way: 3 x 60
#: independent 5-minute streams per set. Do not tune on the "holdout" set.
CLOUD_BENCH_CORPORA: tuple[tuple[str, CloudConfig], ...] = (
    ("tuning", CloudConfig(seed=301)),
    ("tuning", CloudConfig(seed=302)),
    ("tuning", CloudConfig(seed=303, jitter_seconds=5)),
    ("holdout", CloudConfig(seed=401)),
    ("holdout", CloudConfig(seed=402)),
    ("holdout", CloudConfig(seed=403, jitter_seconds=5)),
)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m intelligence.synthetic.telemetry",
        description="Write seeded, labelled synthetic telemetry under DIR/landing and DIR/truth.",
    )
    p.add_argument("--home", required=True, type=Path, help="INTELLIGENCE_HOME to write into")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hosts", type=int, default=20)
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2024, 1, 1))
    p.add_argument("--cadence", type=int, default=300, help="seconds between points")
    p.add_argument("--incidents-per-host", type=float, default=2.0)
    p.add_argument("--subtle-share", type=float, default=0.3)
    p.add_argument("--no-generic-metric", action="store_true", help="omit the generic disk_io metric")
    p.add_argument("--jitter", type=int, default=0, help="timestamp jitter in seconds")
    p.add_argument("--labels-name", default="incidents")
    p.add_argument("--alt-timestamp-share", type=float, default=0.05)
    p.add_argument("--defects", type=float, default=0.0, help="share of each defect kind (dup/order/text/blank)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    cfg = TelemetryConfig(
        seed=args.seed,
        hosts=args.hosts,
        days=args.days,
        start=args.start,
        cadence_seconds=args.cadence,
        incidents_per_host=args.incidents_per_host,
        subtle_share=args.subtle_share,
        include_generic_metric=not args.no_generic_metric,
        jitter_seconds=args.jitter,
        labels_name=args.labels_name,
        alt_timestamp_share=args.alt_timestamp_share,
    )
    if args.defects:
        cfg = replace(
            cfg,
            duplicate_share=args.defects,
            out_of_order_share=args.defects,
            non_numeric_share=args.defects,
            blank_share=args.defects,
        )
    home = args.home.expanduser().resolve()
    summary = generate_telemetry(cfg, home / "landing", home / "truth")
    print(json.dumps(asdict(summary), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
