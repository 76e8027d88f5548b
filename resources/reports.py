"""Where rendered reports go: `reports/<YYYY-MM>/...` under INTELLIGENCE_HOME, written atomically."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import dagster as dg


class ReportStore(dg.ConfigurableResource):
    """A folder of rendered reports (HTML and the chart images beside them)."""

    root: str

    def path(self, relative: str) -> Path:
        root = Path(self.root).expanduser().resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"report path {relative!r} escapes the report folder {root}")
        return target

    def write(self, relative: str, data: bytes | str) -> Path:
        """Write a file so readers see the old or the new version, never a half-written one."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data.encode() if isinstance(data, str) else data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target
