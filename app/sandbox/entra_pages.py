"""The HTML the sandbox's sign-in authority shows a browser.

Entra's pages are large scripts; these are plain forms with the same steps and
field names where they matter (`login`, `passwd`, `otc`), so that a person with
a browser and a scripted client (`app.sandbox.signin_browser`) walk the same
path: sign in with the sandbox user's name and password, or type the device code.
Every value put into a page is escaped.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

_STYLE = (
    "body{font-family:sans-serif;max-width:32em;margin:4em auto;color:#1b1b1b}"
    "input{display:block;margin:.4em 0 1em;padding:.4em;width:100%}"
    ".error{color:#a80000}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    # Sign-in pages must never be cached or framed, as Entra's are not.
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return HTMLResponse(html, status_code=status, headers=headers)


def _error(message: str) -> str:
    return f"<p class='error'>{escape(message)}</p>" if message else ""


def sign_in_page(
    action: str,
    request_id: str,
    *,
    tenant_name: str,
    username: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The authorize step: who signs in (a `login_hint` fills the name in)."""
    body = (
        f"<p>Sign in to <b>{escape(tenant_name)}</b> (sandbox).</p>{_error(error)}"
        f"<form method='post' action='{escape(action)}'>"
        f"<input type='hidden' name='ctx' value='{escape(request_id)}'>"
        "<label>Email, phone, or Skype"
        f"<input type='email' name='login' value='{escape(username)}' autocomplete='username'>"
        "</label><label>Password"
        "<input type='password' name='passwd' autocomplete='current-password'></label>"
        "<button type='submit'>Sign in</button></form>"
    )
    return _page("Sign in", body, status)


def device_login_page(
    action: str, *, user_code: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    """Where the device code flow sends the person: the code, then the sign-in."""
    body = (
        "<p>Enter the code displayed on your app or device, then sign in.</p>"
        f"{_error(error)}<form method='post' action='{escape(action)}'>"
        f"<label>Code<input name='otc' value='{escape(user_code)}' autocomplete='off'></label>"
        "<label>Email, phone, or Skype"
        "<input type='email' name='login' autocomplete='username'></label>"
        "<label>Password<input type='password' name='passwd' autocomplete='current-password'>"
        "</label><button type='submit'>Next</button></form>"
    )
    return _page("Enter code", body, status)


def device_done_page(app_name: str) -> HTMLResponse:
    body = (
        f"<p>You have signed in to the <b>{escape(app_name)}</b> application on your "
        "device. You may now close this window.</p>"
    )
    return _page("Signed in", body)


def form_post_page(redirect_uri: str, fields: dict[str, str]) -> HTMLResponse:
    """`response_mode=form_post`: the browser posts the answer to the app's redirect URI."""
    inputs = "".join(
        f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in fields.items()
    )
    body = (
        f"<form method='post' action='{escape(redirect_uri)}'>{inputs}"
        "<noscript><button type='submit'>Continue</button></noscript></form>"
        "<script>document.forms[0].submit()</script>"
    )
    return _page("Working...", body)


def error_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    return _page(title, _error(message), status)


def signed_out_page() -> HTMLResponse:
    body = "<p>It's a good idea to close all browser windows.</p>"
    return _page("You signed out of your account", body)
