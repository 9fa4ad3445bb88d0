"""Pieces of pages kept rendered per process: `{% keep "store", key %}...{% endkeep %}`.

A piece is drawn once for a key, and its HTML used again wherever the same place of the
same template is drawn with an equal key (`linkmsg/message_html.py` says what each
conversation piece is keyed by, and why). The key is everything the body is drawn from;
`none` draws the body every time. So is a body drawn with URLs or form tokens of its
own (a live event's pieces, a kept list's rows): only a page's plain drawing is kept.

**What differs between two pages that show the same piece** is drawn as a marker and
filled in for each page: the form token (`csrf_token()`), and values the tag names and
the body places with `slot(name)`:

    {% keep "pieces", reply_key(), idempotency_key=form.idempotency_key.data %}
      ... value="{{ slot("idempotency_key") }}" ...
    {% endkeep %}

A marker is NUL and a secret of the process's own (as `list_pane`'s): requests carrying
NUL are refused, the secret never leaves the process, so no text a member wrote can read
as one.

**Stores.** Each store keeps its most recently used pieces (`init_app`'s sizes; 0 keeps
none, every body is drawn), each of at most its number of characters. With
`KEPT_HTML_VERIFY` (the test suite's setting) every piece found is drawn again and
compared: a key that leaves out something its body draws fails whichever test draws it
twice.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

from flask import current_app, request
from jinja2 import nodes
from jinja2.ext import Extension
from markupsafe import Markup, escape

from .lru import Store
from .templating import csrf_token as page_csrf_token

EXTENSION = "linkmsg.pieces"

_SECRET = secrets.token_hex(8)
_MARK = f"\x00piece-{_SECRET}:{{}}\x00"
_MARKS = re.compile(f"\x00piece-{_SECRET}:([a-z_]+)\x00")
_CSRF = Markup(_MARK.format("csrf"))

# While a body is drawn to be kept: the values its slots stand for (markers are drawn).
_keeping: ContextVar[dict | None] = ContextVar("keeping", default=None)
# While a body is drawn for this page only: its slots' values.
_filling: ContextVar[dict | None] = ContextVar("filling", default=None)


class PieceStore(Store):
    """One kind of kept piece: `size` of them, each of at most `most` characters."""

    def __init__(self, size: int, most: int, verify: bool = False):
        super().__init__(size)
        self.most, self.verify = most, verify


def init_app(app, stores: dict[str, tuple[int, int]]) -> None:
    """`stores`: name -> (pieces kept, most characters of one)."""
    verify = bool(app.config.get("KEPT_HTML_VERIFY"))
    app.extensions[EXTENSION] = {
        name: PieceStore(size, most, verify) for name, (size, most) in stores.items() if size > 0
    }
    app.jinja_env.add_extension(Keep)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["slot"] = slot


def store(name: str) -> PieceStore | None:
    return current_app.extensions[EXTENSION].get(name)


def csrf_token() -> str:
    """The page's form token; a marker in a piece drawn to be kept."""
    return _CSRF if _keeping.get() is not None else page_csrf_token()


def slot(name: str) -> str:
    """A value the `keep` tag names (see the module's docstring)."""
    keeping = _keeping.get()
    if keeping is not None:
        if name not in keeping:
            raise KeyError(f"slot {name!r} is not named by its keep tag")
        return Markup(_MARK.format(name))
    filling = _filling.get()
    if filling is None or name not in filling:
        raise KeyError(f"slot {name!r} outside a keep tag that names it")
    return escape(filling[name])


class Keep(Extension):
    """`{% keep store, key[, name=value ...] %}body{% endkeep %}`."""

    tags = {"keep"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        name = parser.parse_expression()
        parser.stream.expect("comma")
        key = parser.parse_expression()
        fills = []
        while parser.stream.skip_if("comma"):
            target = parser.stream.expect("name")
            parser.stream.expect("assign")
            fills.append(nodes.Pair(nodes.Const(target.value), parser.parse_expression()))
        body = parser.parse_statements(("name:endkeep",), drop_needle=True)
        where = nodes.Const(f"{parser.name}:{lineno}")
        call = self.call_method(
            "_keep", [nodes.ContextReference(), name, where, key, nodes.Dict(fills)]
        )
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _keep(self, context, name, where, key, fills, caller):
        return keep(context, name, where, key, fills, caller)


def _plain(context) -> bool:
    """Whether the context draws with the app's own URLs and form token."""
    found = context.environment.globals
    return context.resolve_or_missing("url_for") is found.get(
        "url_for"
    ) and context.resolve_or_missing("csrf_token") is found.get("csrf_token")


def keep(context, name, where, key, fills: dict, caller) -> Markup:
    outer = _keeping.get()
    if outer is not None and fills:
        raise ValueError("a piece inside a kept piece cannot name slots of its own")
    kept_in = store(name) if key is not None and _plain(context) else None
    if kept_in is None:
        if outer is not None:  # drawn into the outer piece, markers and all
            return caller()
        return _draw(caller, fills, keeping=False)
    full = (where, request.script_root, key)
    kept = kept_in.get(full)
    if kept is None or kept_in.verify:
        drawn = _draw(caller, fills, keeping=True)
        if kept is not None and kept != drawn:
            raise AssertionError(f"a kept piece differs from its drawing at {where}: {key!r}")
        if kept is None and len(drawn) <= kept_in.most:
            kept_in.put(full, drawn)
        kept = drawn
    else:
        kept_in.used += 1
    return kept if outer is not None else fill(kept, fills)


def _draw(caller, fills: dict, *, keeping: bool) -> Markup:
    var = _keeping if keeping else _filling
    token = var.set(fills)
    try:
        return Markup(caller())
    finally:
        var.reset(token)


def fill(kept: Markup, fills: dict) -> Markup:
    """A kept piece with this page's values in place of its markers."""
    if "\x00" not in kept:
        return kept

    def value(found) -> str:
        name = found.group(1)
        return str(escape(page_csrf_token() if name == "csrf" else fills[name]))

    return Markup(_MARKS.sub(value, kept))
