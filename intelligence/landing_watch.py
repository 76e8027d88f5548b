"""Watching the landing zone: which folders got new files since the last look, in bounded work per tick.

Why not Dagster's own helpers: Dagster has no file sensor; the usual recipe lists every file on every
tick, which is O(all files ever landed). Here a tick costs O(folders) `stat` calls plus a listing of
only the folders whose modification time changed, so 100,000 historical files cost what their few
thousand folders cost.

Units of change ("watched folders"):
- `<source>/<YYYY-MM-DD>/` for the daily sources: the change is that day's partition;
- `telemetry/<host>/<metric>/`: the change is the set of new or changed files (their rows decide the days);
- `paths/`: pre-aggregated path exports (unpartitioned).

Each watched folder's state is `(mtime_ns, digest)`, the digest being a hash of the sorted
`(name, size, mtime_ns)` of its data files; a run key built from the digest makes every distinct
set of files exactly one run, however often a tick is replayed. A folder touched less than
`SETTLE_SECONDS` ago is looked at again on the next tick even if its mtime did not change (coarse
mtime clocks), and a file younger than that is not taken yet (it may still be growing). Uploaders
that write `.name.tmp` and rename are never seen half-written: hidden files are ignored.

Everything that does not fit the layout is reported once as a rejected landing with its reason.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import stat
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SETTLE_SECONDS = 2.0
DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATA_SUFFIXES = (".csv", ".jsonl")
TELEMETRY = "telemetry"
TELEMETRY_LABELS = "telemetry_labels"
PATHS = "paths"
CURSOR_VERSION = 1


@dataclass(frozen=True)
class FolderChange:
    """A watched folder whose set of data files changed."""

    kind: str  # "daily" | "telemetry" | "paths"
    folder: str  # relative to the landing root, e.g. "ads/2024-01-05"
    digest: str
    files: tuple[tuple[str, int, int], ...]  # (name, size, mtime_ns) of the data files now in the folder

    def paths(self) -> list[str]:
        return [f"{self.folder}/{name}" for name, _, _ in self.files]

    @property
    def source(self) -> str:
        return self.folder.split("/")[0]

    @property
    def day(self) -> dt.date | None:
        parts = self.folder.split("/")
        return dt.date.fromisoformat(parts[1]) if self.kind == "daily" else None

    @property
    def run_key(self) -> str:
        return f"landing:{self.folder}:{self.digest[:20]}"


@dataclass(frozen=True)
class Rejection:
    path: str
    reason: str


@dataclass
class ScanResult:
    changes: list[FolderChange] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    cursor: dict[str, Any] = field(default_factory=dict)
    more: bool = False  # work left for the next tick (the per-tick bound was hit)
    folders_seen: int = 0
    folders_listed: int = 0


def empty_cursor() -> dict[str, Any]:
    return {"v": CURSOR_VERSION, "folders": {}, "rejected": []}


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path, follow_symlinks=False)
    except OSError:
        return None


def _subdirs(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []


class LandingWatcher:
    """Finds changed landing folders. `sources` are the daily-partitioned source names."""

    def __init__(self, root: Path, sources: Iterable[str], max_folders_per_tick: int = 2000):
        self.root = Path(root)
        self.sources = tuple(sources)
        self.max_folders = max_folders_per_tick

    # -- discovering watched folders (cheap: folders only) -----------------------------------

    def _watched(self, rejections: list[Rejection]) -> list[tuple[str, str, int]]:
        """(kind, relative folder, mtime_ns) of every watched folder."""
        root = str(self.root)
        found: list[tuple[str, str, int]] = []
        for top in _subdirs(root):
            name = top.name
            if name.startswith("."):
                continue
            if not top.is_dir(follow_symlinks=False):
                rejections.append(Rejection(name, "a file at the landing root is outside the expected layout"))
                continue
            if name in self.sources:
                for day in _subdirs(top.path):
                    rel = f"{name}/{day.name}"
                    if day.name.startswith("."):
                        continue
                    if day.is_symlink() or not day.is_dir(follow_symlinks=False):
                        reason = (
                            "a symlink is not a day folder" if day.is_symlink() else "a file must be in a day folder"
                        )
                        rejections.append(Rejection(rel, f"{reason} (expected {name}/<YYYY-MM-DD>/<file>)"))
                    elif not DAY_FOLDER.match(day.name) or not _is_date(day.name):
                        rejections.append(Rejection(rel, "folder name is not a date (expected YYYY-MM-DD)"))
                    else:
                        st = _stat(day.path)
                        if st is not None:
                            found.append(("daily", rel, st.st_mtime_ns))
            elif name == TELEMETRY:
                for host in _subdirs(top.path):
                    if host.name.startswith("."):
                        continue
                    if not host.is_dir(follow_symlinks=False):
                        rejections.append(Rejection(f"{name}/{host.name}", "expected telemetry/<host>/<metric>/<file>"))
                        continue
                    for metric in _subdirs(host.path):
                        rel = f"{name}/{host.name}/{metric.name}"
                        if metric.name.startswith("."):
                            continue
                        if not metric.is_dir(follow_symlinks=False):
                            rejections.append(Rejection(rel, "expected telemetry/<host>/<metric>/<file>"))
                            continue
                        st = _stat(metric.path)
                        if st is not None:
                            found.append(("telemetry", rel, st.st_mtime_ns))
            elif name == PATHS:
                st = _stat(top.path)
                if st is not None:
                    found.append(("paths", name, st.st_mtime_ns))
            elif name == TELEMETRY_LABELS:
                continue  # read by the detection-quality module, not a data source
            else:
                rejections.append(Rejection(name, "unknown source folder"))
        return found

    # -- listing one folder --------------------------------------------------------------------

    def _list(self, rel: str, now: float, rejections: list[Rejection]) -> tuple[list[tuple[str, int, int]], bool]:
        """Data files as (name, size, mtime_ns), and whether the folder has settled."""
        folder = self.root / rel
        files: list[tuple[str, int, int]] = []
        settled = True
        root = self.root.resolve()
        for entry in _subdirs(str(folder)):
            name = entry.name
            if name.startswith("."):
                continue
            path = f"{rel}/{name}"
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                rejections.append(Rejection(path, f"unreadable: {exc.strerror or exc}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                target = Path(entry.path).resolve()
                inside = target.is_relative_to(root)
                rejections.append(
                    Rejection(
                        path,
                        "symlink inside the landing root (read at its target)"
                        if inside
                        else "symlink out of the landing root refused",
                    )
                )
                continue
            if stat.S_ISDIR(st.st_mode):
                rejections.append(Rejection(path, "a folder where files are expected"))
                continue
            if not stat.S_ISREG(st.st_mode):
                # A pipe, socket or device: opening it could block the sensor, and the raw asset skips it.
                rejections.append(Rejection(path, "not a regular file (a pipe, socket or device)"))
                continue
            if not name.lower().endswith(DATA_SUFFIXES):
                rejections.append(Rejection(path, f"unsupported file type (expected {', '.join(DATA_SUFFIXES)})"))
                continue
            if not os.access(entry.path, os.R_OK):
                rejections.append(Rejection(path, "unreadable: permission denied"))
                continue
            if now - st.st_mtime_ns / 1e9 < SETTLE_SECONDS:
                settled = False  # still being written, or just landed: take it on the next tick
                continue
            files.append((name, st.st_size, st.st_mtime_ns))
        return files, settled

    # -- a tick --------------------------------------------------------------------------------

    def scan(self, cursor: dict[str, Any] | None, now: float | None = None) -> ScanResult:
        """One bounded look at the landing zone; returns what changed and the cursor to store.

        Cursor: {"v": 1, "folders": {folder: [mtime_ns, digest, unsettled]}, "rejected": [keys]}.
        """
        now = dt.datetime.now(dt.UTC).timestamp() if now is None else now
        state = cursor if cursor and cursor.get("v") == CURSOR_VERSION else empty_cursor()
        folders: dict[str, list[Any]] = dict(state["folders"])
        rejected_seen = set(state["rejected"])
        rejections: list[Rejection] = []
        watched = self._watched(rejections)
        result = ScanResult(folders_seen=len(watched))

        due = []
        for kind, rel, mtime in watched:
            known = folders.get(rel)
            if known is None or known[0] != mtime or known[2]:
                due.append((mtime, kind, rel))
        due.sort()  # oldest first, so a backlog drains in landing order
        for mtime, kind, rel in due[: self.max_folders]:
            files, settled = self._list(rel, now, rejections)
            # A folder modified within the clock's granularity of this listing can take another file
            # (with an old, preserved mtime) without its own mtime moving on: look again next tick.
            settled = settled and now - mtime / 1e9 >= SETTLE_SECONDS
            result.folders_listed += 1
            digest = digest_files(files)
            known = folders.get(rel)
            # The folder mtime was read *before* listing: a file landing during the listing moves
            # the mtime on, so the next tick lists the folder again and nothing is missed.
            folders[rel] = [mtime, digest, not settled]
            if files and (known is None or digest != known[1]):
                result.changes.append(FolderChange(kind=kind, folder=rel, digest=digest, files=tuple(files)))
        result.more = len(due) > self.max_folders
        fresh = [r for r in rejections if _rejection_key(r) not in rejected_seen]
        result.rejections = fresh
        rejected_seen.update(_rejection_key(r) for r in fresh)
        result.cursor = {"v": CURSOR_VERSION, "folders": folders, "rejected": sorted(rejected_seen)}
        return result


def relist(cursor: dict[str, Any], folder: str) -> None:
    """Make the next scan list `folder` again and report it as changed, whatever its files (the sensor
    could not act on it this tick)."""
    cursor["folders"][folder] = [0, "", True]


def dump_cursor(cursor: dict[str, Any]) -> str:
    """The cursor as Dagster stores it: compressed JSON (a tick row keeps a copy of it)."""
    raw = json.dumps(cursor, separators=(",", ":"), sort_keys=True).encode()
    return "z:" + base64.b64encode(zlib.compress(raw, 9)).decode()


def load_cursor(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    if text.startswith("z:"):
        return dict(json.loads(zlib.decompress(base64.b64decode(text[2:]))))
    return dict(json.loads(text))  # uncompressed cursors of earlier versions


def digest_files(files: list[tuple[str, int, int]]) -> str:
    """The identity of a set of files: their names, sizes and modification times."""
    h = hashlib.sha256()
    for name, size, mtime in sorted(files):
        h.update(f"{name}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()[:16]


def _rejection_key(rejection: Rejection) -> str:
    return hashlib.sha1(f"{rejection.path}\0{rejection.reason}".encode()).hexdigest()[:16]


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True
