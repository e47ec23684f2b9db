"""A scripted browser for the sandbox's sign-in pages.

Where a person would open the sign-in page, type the user's name and password
(or the device code) and submit, this does the same HTTP requests: it reads the
forms the pages serve, fills them, and follows the answer to the application's
redirect URI (a 302, or the auto-submitting `form_post` page). Tests and tools
use it where no browser exists; it verifies TLS against the sandbox CA, and it
only ever posts the sandbox user's credentials to the sandbox itself.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from app.errors import ServiceFailure

TIMEOUT_S = 30


class SignInFailed(ServiceFailure):
    """The sandbox refused the sign-in (wrong code, name or password; expired request)."""


class _Forms(HTMLParser):
    """The forms of a page: action, method and the named inputs with their values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self._errors: list[str] = []
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                {"action": values.get("action", ""), "method": values.get("method", "get"),
                 "fields": {}}
            )
        elif tag == "input" and self.forms and values.get("name"):
            fields = self.forms[-1]["fields"]
            assert isinstance(fields, dict)
            fields[values["name"]] = values.get("value", "")
        elif tag == "p" and values.get("class") == "error":
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self._errors.append(data)

    @property
    def error(self) -> str:
        return " ".join(self._errors).strip()


def _parse(text: str) -> _Forms:
    parser = _Forms()
    parser.feed(text)
    return parser


def _refused(response: requests.Response) -> SignInFailed:
    parsed = _parse(response.text)
    return SignInFailed(
        f"the sandbox refused the sign-in (HTTP {response.status_code}): "
        f"{parsed.error or 'no reason given'}"
    )


def _only_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SignInFailed(f"refusing to send the sign-in anywhere but loopback, not to {host}")


def _fields(form: dict[str, object]) -> dict[str, str]:
    fields = form["fields"]
    assert isinstance(fields, dict)
    return {str(k): str(v) for k, v in fields.items()}


def approve_device_code(
    authority: str, user_code: str, *, ca_cert: Path, username: str, password: str
) -> None:
    """Approve a device code on the authority's `/devicelogin` page, as a person would."""
    url = f"{authority.rstrip('/')}/devicelogin"
    _only_loopback(url)
    with requests.Session() as session:
        verify = str(ca_cert)  # per request: a session's `verify` loses to REQUESTS_CA_BUNDLE
        page = session.get(url, timeout=TIMEOUT_S, verify=verify)
        if page.status_code != 200:
            raise _refused(page)
        form = _parse(page.text).forms[0]
        fields = _fields(form) | {"otc": user_code, "login": username, "passwd": password}
        action = urljoin(page.url, str(form["action"]))
        _only_loopback(action)
        answer = session.post(action, data=fields, timeout=TIMEOUT_S, verify=verify)
        if answer.status_code != 200:
            raise _refused(answer)


def complete_browser_sign_in(
    authorize_url: str, *, ca_cert: Path, username: str, password: str
) -> None:
    """Open an authorize URL, sign in, and deliver the answer to the app's redirect URI."""
    _only_loopback(authorize_url)
    with requests.Session() as session:
        verify = str(ca_cert)  # per request: a session's `verify` loses to REQUESTS_CA_BUNDLE
        page = session.get(authorize_url, timeout=TIMEOUT_S, allow_redirects=False, verify=verify)
        if page.status_code in (302, 303):
            # An error answered straight to the redirect URI (e.g. invalid_scope).
            _deliver_redirect(session, page.headers["Location"])
            return
        if page.status_code != 200:
            raise _refused(page)
        form = _parse(page.text).forms[0]
        fields = _fields(form) | {"login": username, "passwd": password}
        action = urljoin(page.url, str(form["action"]))
        _only_loopback(action)
        answer = session.post(
            action, data=fields, timeout=TIMEOUT_S, allow_redirects=False, verify=verify
        )
        if answer.status_code in (302, 303):
            _deliver_redirect(session, answer.headers["Location"])
        elif answer.status_code == 200:
            # response_mode=form_post: what the page's script would submit.
            posted = _parse(answer.text).forms[0]
            target = str(posted["action"])
            _only_loopback(target)
            session.post(target, data=_fields(posted), timeout=TIMEOUT_S)
        else:
            raise _refused(answer)


def _deliver_redirect(session: requests.Session, location: str) -> None:
    _only_loopback(location)
    session.get(location, timeout=TIMEOUT_S)
