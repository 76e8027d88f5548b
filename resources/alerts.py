"""Operator alerts: a DuckDB `alerts` table, a JSONL file, and optionally a webhook.

An alert has a key (what it is about, e.g. `run_failure:marketing/raw_ads`). While an alert with
the same key is open and younger than the cooldown, raising it again only counts the repeat, so a
source that keeps failing (and its retries) makes one alert, not one per attempt. The webhook URL
comes from an environment variable through `dg.EnvVar`, so it never reaches snapshots or logs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from resources.warehouse import Warehouse

TABLE = "alerts"
CREATE = f"""
create table if not exists {TABLE} (
    alert_id varchar primary key,
    key varchar not null,
    kind varchar not null,
    severity varchar not null,
    message varchar not null,
    details json,
    raised_at timestamptz not null,
    last_seen timestamptz not null,
    occurrences integer not null,
    resolved_at timestamptz
)
"""


@dataclass(frozen=True)
class Alert:
    alert_id: str
    key: str
    new: bool  # False when an open alert with the same key absorbed this one
    occurrences: int


class AlertSink(dg.ConfigurableResource):
    """Where alerts go. `webhook_url` should be set with `dg.EnvVar("INTELLIGENCE_ALERT_WEBHOOK")`."""

    warehouse_path: str
    jsonl_path: str
    webhook_url: str | None = None
    cooldown_minutes: int = 24 * 60
    webhook_timeout_seconds: float = 5.0

    def raise_alert(
        self,
        key: str,
        kind: str,
        message: str,
        severity: str = "error",
        details: dict[str, object] | None = None,
        now: dt.datetime | None = None,
        log: logging.Logger | dg.DagsterLogManager | None = None,
    ) -> Alert:
        """Record an alert (or count a repeat of an open one) and notify the webhook for new ones."""
        now = now or dt.datetime.now(dt.UTC)
        payload = json.dumps(details or {}, sort_keys=True, default=str)
        warehouse = Warehouse(path=self.warehouse_path)
        with warehouse.write() as con:
            con.execute(CREATE)
            open_alert = con.execute(
                f"select alert_id, occurrences, raised_at from {TABLE} where key = ? and resolved_at is null "
                "order by raised_at desc limit 1",
                [key],
            ).fetchone()
            cutoff = now - dt.timedelta(minutes=self.cooldown_minutes)
            if open_alert is not None and open_alert[2] >= cutoff:
                con.execute(
                    f"update {TABLE} set occurrences = occurrences + 1, last_seen = ? where alert_id = ?",
                    [now, open_alert[0]],
                )
                return Alert(alert_id=str(open_alert[0]), key=key, new=False, occurrences=int(open_alert[1]) + 1)
            alert_id = uuid.uuid4().hex[:16]
            con.execute(
                f"insert into {TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, 1, null)",
                [alert_id, key, kind, severity, message, payload, now, now],
            )
        record = {
            "alert_id": alert_id,
            "key": key,
            "kind": kind,
            "severity": severity,
            "message": message,
            "details": details or {},
            "raised_at": now.isoformat(),
        }
        path = Path(self.jsonl_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self._post(record, log)
        return Alert(alert_id=alert_id, key=key, new=True, occurrences=1)

    def resolve(self, key: str, now: dt.datetime | None = None) -> int:
        """Close the open alerts with this key; returns how many were closed."""
        now = now or dt.datetime.now(dt.UTC)
        with Warehouse(path=self.warehouse_path).write() as con:
            con.execute(CREATE)
            closed = con.execute(
                f"update {TABLE} set resolved_at = ? where key = ? and resolved_at is null returning alert_id",
                [now, key],
            ).fetchall()
        return len(closed)

    def _post(self, record: Mapping[str, object], log: logging.Logger | dg.DagsterLogManager | None) -> None:
        if not self.webhook_url:
            return
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(
                {"text": f"[{record['severity']}] {record['message']}", "alert": record}, default=str
            ).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.webhook_timeout_seconds) as response:
                response.read()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            # The alert is recorded; a webhook outage must not break the sensor or run that raised it.
            # The URL itself is never logged (it often carries a token).
            if log is not None:
                log.warning(
                    f"alert {record['alert_id']} recorded, but the webhook did not accept it: {type(exc).__name__}"
                )
