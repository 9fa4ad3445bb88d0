"""The session cookie, its checked contents kept per cookie.

Flask's session is a signed cookie: every request checks its signature (an HMAC under
the secret key, each of the fallback keys in turn) and decodes its tagged JSON, about a
tenth of a millisecond of a page's CPU (bench/README.md). A cookie's text, under the
same keys, always checks and decodes to the same contents signed at the same moment; a
member's browser sends the same cookie on every page until the session changes. So the
contents of the cookies seen last are kept (per process, `SESSION_COOKIES_KEPT` of them;
0 keeps none), under the cookie's whole text and the keys, and only the cookie's age is
checked again, as Flask checks it.

What is not kept: a cookie that fails its check (it is checked again each time, and
fails again), and contents holding anything but plain values (a view may change a list,
such as the flashed messages, in place). Each request gets its own copy. Whether the
login it names is still live is not the cookie's to say: `sessions.load_member` asks the
database on every request.
"""

from __future__ import annotations

import time

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature

from .lru import Store

_PLAIN = (str, int, float, bool, type(None))


class KeptCookieSessions(SecureCookieSessionInterface):
    def __init__(self, size: int):
        self.kept = Store(size) if size > 0 else None

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if self.kept is None:
            return super().open_session(app, request)
        text = request.cookies.get(self.get_cookie_name(app))
        if not text or not app.secret_key:
            return super().open_session(app, request)
        key = (text, app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        max_age = int(app.permanent_session_lifetime.total_seconds())
        kept = self.kept.get(key)
        if kept is not None:
            contents, signed_at = kept
            # As itsdangerous checks it: whole seconds, neither too old nor ahead.
            if 0 <= int(time.time()) - signed_at <= max_age:
                self.kept.used += 1
                return self.session_class(contents)
        serializer = self.get_signing_serializer(app)
        try:
            contents, signed_at = serializer.loads(text, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(contents, dict) and all(isinstance(v, _PLAIN) for v in contents.values()):
            self.kept.put(key, (dict(contents), int(signed_at.timestamp())))
        return self.session_class(contents)


def init_app(app: Flask) -> None:
    app.session_interface = KeptCookieSessions(int(app.config.get("SESSION_COOKIES_KEPT", 0)))
