#!/usr/bin/env python3
"""Launch an asset backfill on the running deployment, from the command line.

It sends the webserver the GraphQL mutation the UI sends for "Materialize → date range": the
backfill is recorded in the instance (Postgres), the daemon submits its runs to the queue, and the
DockerRunLauncher starts each run in its own container. Single-run assets get one run per range.
Standard library only, so any python3 on the host runs it (the webserver is published on
127.0.0.1:3000 by default; through an SSH tunnel for a remote host).

    python3 deploy/launch_backfill.py --start 2024-01-01 --end 2024-01-31 \\
        --assets marketing/raw_ads,marketing/cleansed_ads,marketing/cleansed_ads_quarantine
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

DEFAULT_URL = "http://127.0.0.1:3000"

LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""


def backfill_params(assets: Sequence[str], start: str, end: str, title: str | None = None) -> dict[str, Any]:
    """The mutation's variables: every asset (`a/b` key paths) over the partition range start...end."""
    if not assets:
        raise ValueError("name at least one asset key, e.g. marketing/raw_ads")
    params: dict[str, Any] = {
        "partitionsByAssets": [
            {"assetKey": {"path": key.strip().split("/")}, "partitions": {"range": {"start": start, "end": end}}}
            for key in assets
        ]
    }
    if title:
        params["title"] = title
    return {"backfillParams": params}


def post(url: str, query: str, variables: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """POST one GraphQL document to `<url>/graphql`; GraphQL-level errors raise."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.load(response)
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {json.dumps(payload['errors'], indent=2)}")
    return dict(payload["data"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", required=True, help="comma-separated asset keys, e.g. marketing/raw_ads")
    parser.add_argument("--start", required=True, help="first partition, e.g. 2024-01-01")
    parser.add_argument("--end", required=True, help="last partition (inclusive), e.g. 2024-01-31")
    parser.add_argument("--title", help="a title shown in the UI's backfill list")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the webserver (default {DEFAULT_URL})")
    args = parser.parse_args(argv)
    assets = [a for a in args.assets.split(",") if a.strip()]
    try:
        data = post(args.url, LAUNCH_BACKFILL, backfill_params(assets, args.start, args.end, args.title))
    except (urllib.error.URLError, RuntimeError, ValueError) as exc:
        print(f"backfill not launched: {exc}", file=sys.stderr)
        return 1
    result = data["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        print(f"backfill not launched ({result['__typename']}): {result.get('message')}", file=sys.stderr)
        return 1
    print(f"backfill {result['backfillId']} requested: {args.url.rstrip('/')}/runs/b/{result['backfillId']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
