"""Tail the function app's container log, from its Kudu (SCM) host.

The SCM host is the one ARM names in the site's `hostNameSslStates` (the
`Repository` entry), never composed from the app's name: clouds and Azure's newer
unique default host names spell it differently. Linux App Service writes the
container's output to `*_default_docker.log` under `LogFiles/` once container
logging is on (the function-app step turns it on). The file is read with
`Range: bytes=N-`, so each call returns only what is new; Kudu accepts the
signed-in identity's ARM token. Lines pass through redaction like every log.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from app.errors import ServiceFailure
from app.services.clients import ClientFactory
from app.services.redaction import redact
from app.services.target import CloudTarget
from app.services.transport import retrying_session
from app.spec import DeploymentSpec

MAX_BYTES = 256 * 1024


def scm_host(site: Any) -> str:
    """The site's Kudu host, as ARM reports it."""
    for state in site.host_name_ssl_states or []:
        kind = str(getattr(state.host_type, "value", state.host_type) or "")
        if kind.lower() == "repository" and state.name:
            return str(state.name)
    raise ServiceFailure(f"function app {site.name} reports no SCM (Kudu) host")


def _log_url(base: str, name: str, session: Any, headers: dict[str, str],
             verify: str | bool) -> str:
    listing = session.get(base, headers=headers, timeout=30, verify=verify)
    if listing.status_code != 200:
        raise ServiceFailure(f"the log folder of {name} answered HTTP {listing.status_code}")
    logs = [
        item for item in listing.json()
        if str(item.get("name", "")).endswith("_default_docker.log")
    ]
    if not logs:
        raise ServiceFailure(f"{name} has no container log yet",
                             "Container logging is turned on by deploy; run it again if the "
                             "app was made elsewhere.")
    newest = max(logs, key=lambda item: str(item.get("mtime", "")))
    return str(newest.get("href") or base + str(newest["name"]))


def tail(
    spec: DeploymentSpec, target: CloudTarget, clients: ClientFactory, since: int = 0
) -> tuple[list[str], int]:
    """Lines written after byte offset `since`, and the offset to ask from next time."""
    name = spec.function_app.name
    site = clients.web().web_apps.get(spec.resource_group.name, name)
    base = f"https://{scm_host(site)}/api/vfs/LogFiles/"
    token = target.credential.get_token(*target.credential_scopes).token
    auth = {"Authorization": f"Bearer {token}"}
    # Every Kudu call is a GET: a 503 or a dropped connection is asked again.
    with retrying_session(target) as session:
        url = _log_url(base, name, session, auth, target.verify)
        response = session.get(url, headers={**auth, "Range": f"bytes={max(0, since)}-"},
                               timeout=30, verify=target.verify)
    if response.status_code in (404, 416):  # not there yet, or nothing new
        return [], since
    if response.status_code not in (200, 206):
        raise ServiceFailure(f"reading the function's log answered HTTP {response.status_code}")
    data = response.content[-MAX_BYTES:]
    # A 200 means the server ignored the range and sent the whole file.
    size = len(response.content)
    offset = since + size if response.status_code == 206 else size
    text = data.decode("utf-8", errors="replace")
    # Keep a partial last line for the next call.
    if text and not text.endswith("\n"):
        cut = text.rfind("\n") + 1
        offset -= len(text[cut:].encode("utf-8"))
        text = text[:cut]
    return [redact(line) for line in text.splitlines()], offset


# Level words as they open a container log line, after its timestamp: App Service's
# platform lines (`<time> INFO  - …`), Python's logging (`INFO`, `WARNING`, `ERROR`,
# `CRITICAL`), and the Functions host's console logger, whose short names are
# `trce dbug info warn fail crit` (Microsoft.Extensions.Logging.Console,
# GetLogLevelString in https://github.com/dotnet/runtime/blob/main/src/libraries/
# Microsoft.Extensions.Logging.Console/src/SimpleConsoleFormatter.cs).
_LEVEL_WORDS = {
    "trace": "DEBUG", "trce": "DEBUG", "debug": "DEBUG", "dbug": "DEBUG",
    "verbose": "DEBUG",
    "info": "INFO", "information": "INFO",
    "warn": "WARNING", "warning": "WARNING",
    "error": "ERROR", "fail": "ERROR", "crit": "ERROR", "critical": "ERROR",
    "fatal": "ERROR",
}
# An optional timestamp (digits and `-:.,+TZ`, perhaps in brackets), then the first
# word, perhaps in brackets, ended by a space, a colon or a dash.
_LEVEL_WORD = re.compile(r"^\s*(?:\[?\d[\d\-:T.,+Z ]*\]?\s*)?\[?([A-Za-z]+)\]?(?:[\s:\-]|$)")


def line_level(line: str) -> str:
    """The level a container log line states (DEBUG, INFO, WARNING or ERROR).

    Read from the line's level word, never from its message: an INFO line that
    mentions "error" ("0 errors", "error handler registered") is INFO. A line with
    no level word (a continuation, a plain print) is INFO; a Python traceback's
    first line is an ERROR.
    """
    if line.lstrip().startswith("Traceback (most recent call last)"):
        return "ERROR"
    match = _LEVEL_WORD.match(line)
    if match is None:
        return "INFO"
    return _LEVEL_WORDS.get(match.group(1).lower(), "INFO")


_STAMP = re.compile(
    r"^\s*\[?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\]?\s*")


def split_line(line: str) -> tuple[str, float | None, str]:
    """(level, when, message) of a container log line: the line's own time (not when
    it was fetched, which can be half a minute later) and the text after the time and
    its level word, so a log pane that prints both does not print them twice. A line
    without a time keeps its text as it is (`when` None); the level is line_level's."""
    level = line_level(line)
    stamp = _STAMP.match(line)
    if stamp is None:
        return level, None, line
    text = stamp.group(1).replace(",", ".")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return level, None, line
    rest = line[stamp.end():]
    word = re.match(r"\[?([A-Za-z]+)\]?(?:\s*-\s+|:\s+|\s+|$)", rest)
    if word is not None and word.group(1).lower() in _LEVEL_WORDS:
        rest = rest[word.end():]
    return level, when, rest
