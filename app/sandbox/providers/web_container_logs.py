"""A Linux site's container logs, `LogFiles/*_docker.log`, as App Service writes them.

On Linux App Service the platform writes two files in `/home/LogFiles`:
`YYYY_MM_DD_<machine>_default_docker.log` (what the container prints) and
`YYYY_MM_DD_<machine>_docker.log` (the platform's own lines: pulls, starts, stops),
and only while container logging is on, i.e. after
`az webapp log config --docker-container-logging filesystem` has set the site's
logs config `httpLogs.fileSystem.enabled` (azure-cli's appservice `custom.py`,
`_config_diagnostics`). Output from before that is not in them.

The sandbox keeps one log per site (`LogFiles/site.log`: platform lines and the
host's output, in order); these files are derived from it: the byte ranges of
`site.log` written while logging was on (`segments`), split into platform lines
(`<timestamp> <LEVEL> - <message>`, as `SiteRuntime.write_log` writes them) and
everything else. Only whole lines count, so a file's size only grows and a reader
can ask for `Range: bytes=N-` as it would on Azure.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The machine part of the file names: App Service shows an instance name
# (e.g. `lw0sdlwk0001TB`) or an address with dashes (`10-30-0-91`).
MACHINE = "127-0-0-1"
_PLATFORM_LINE = re.compile(rb"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z [A-Z]+ *- ")


@dataclass(frozen=True)
class ContainerLogFile:
    """One derived log file: its name, its content and Kudu's times for it."""

    name: str
    data: bytes
    mtime: float
    crtime: float

    @property
    def size(self) -> int:
        return len(self.data)


def new_segment(site_log: Path) -> dict[str, Any]:
    """The segment that starts now: what `site.log` gets from here on is logged."""
    try:
        offset = site_log.stat().st_size
    except OSError:
        offset = 0
    started = datetime.datetime.now(datetime.UTC).timestamp()
    return {"from": offset, "until": None, "started": started}


def close_segment(segments: list[dict[str, Any]], site_log: Path) -> None:
    """Container logging was switched off: nothing written from now on counts."""
    if segments and segments[-1].get("until") is None:
        try:
            segments[-1]["until"] = site_log.stat().st_size
        except OSError:
            segments[-1]["until"] = segments[-1]["from"]


def _logged_lines(data: bytes, segments: Iterable[Mapping[str, Any]]) -> list[bytes]:
    lines: list[bytes] = []
    for segment in segments:
        start = int(segment["from"])
        until = segment.get("until")
        end = len(data) if until is None else min(int(until), len(data))
        if start >= end:
            continue
        chunk = data[start:end]
        whole = chunk[: chunk.rfind(b"\n") + 1]
        lines.extend(whole.splitlines(keepends=True))
    return lines


def container_log_files(
    site_log: Path, segments: list[Mapping[str, Any]]
) -> list[ContainerLogFile]:
    """The `*_default_docker.log` and `*_docker.log` files, those that have content."""
    if not segments:
        return []
    try:
        data = site_log.read_bytes()
        mtime = site_log.stat().st_mtime
    except OSError:
        return []
    platform: list[bytes] = []
    container: list[bytes] = []
    for line in _logged_lines(data, segments):
        (platform if _PLATFORM_LINE.match(line) else container).append(line)
    started = float(segments[0]["started"])
    day = datetime.datetime.fromtimestamp(started, datetime.UTC).strftime("%Y_%m_%d")
    files = []
    for suffix, lines in (("default_docker.log", container), ("docker.log", platform)):
        if lines:
            name = f"{day}_{MACHINE}_{suffix}"
            files.append(ContainerLogFile(name, b"".join(lines), mtime, started))
    return files


def kudu_time(timestamp: float) -> str:
    """Kudu's VFS time format, e.g. `2022-08-02T19:49:04.6152186+00:00`."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0+00:00"
