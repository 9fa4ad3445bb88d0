"""A corpus of XSS payloads in every field a member controls: none becomes markup.

Each payload goes into a name, headline, location, about, a message body, an InMail
subject and body, an invitation note, a file name, a group's name and the system lines
that name the group and its members; every page and fragment that shows
them is parsed, and no element, attribute or script from a payload may appear.
"""

import io
from urllib.parse import urlencode

import pytest
from bs4 import BeautifulSoup

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import (
    accounts,
    attachments,
    billing,
    groups,
    inmail,
    messaging,
    network,
    organise,
    profile_views,
    reports,
)
from linkmsg.services.errors import ValidationFailed

from .factories import Browser, make_member

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=javascript:alert(1)>",
    "<body onload=alert(1)>",
    "<a href=javascript:alert(1)>x</a>",
    '<a href="javascript:alert(1)">x</a>',
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<marquee onstart=alert(1)>",
    "<video><source onerror=alert(1)>",
    "<audio src=x onerror=alert(1)>",
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<math><mtext><script>alert(1)</script>",
    "<form action=javascript:alert(1)><button>x",
    "<isindex action=javascript:alert(1) type=image>",
    "<link rel=stylesheet href=javascript:alert(1)>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
    "<style>@import 'javascript:alert(1)';</style>",
    '<div style="background:url(javascript:alert(1))">',
    '"><script>alert(1)</script>',
    "'><script>alert(1)</script>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<ScRiPt>alert(1)</sCrIpT>",
    "<script src=//evil.example/x.js></script>",
    '<img src="x" onerror="alert(1)">',
    "<img src=x onerror=alert`1`>",
    "<img/src/onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<body/onload=alert(1)>",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "{{7*7}}",
    "{% raw %}{{ config }}{% endraw %}",
    "${alert(1)}",
    "<div hx-get=/logout hx-trigger=load>",
    "<span hx-on:click=alert(1)>x</span>",
    '<div hx-swap-oob="true" id="main">pwned</div>',
    "<template><script>alert(1)</script></template>",
    "<base href=//evil.example/>",
    "<table background=javascript:alert(1)>",
    '<a href="https://example.com" onclick="alert(1)">link</a>',
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "\u202e<script>alert(1)</script>",
    "<xmp><script>alert(1)</script></xmp>",
]

# Elements our templates never render: from a payload, they would be markup.
NEVER_RENDERED = {
    "iframe",
    "object",
    "embed",
    "style",
    "base",
    "marquee",
    "video",
    "audio",
    "source",
    "math",
    "isindex",
    "xmp",
    "noscript",
    "template",
    "body",
}
META_NAMES = {None, "viewport", "csrf-token", "htmx-config"}
URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "background",
    "style",
    "poster",
    "hx-get",
    "hx-post",
    "sse-connect",
}


def assert_inert(html: str, where: str) -> None:
    page = BeautifulSoup(html, "lxml")
    bodies = page.find_all("body")
    assert len(bodies) <= 1, f"{where}: a second <body>"
    for tag in page.find_all(True):
        if tag.name in NEVER_RENDERED - {"body"}:
            raise AssertionError(f"{where}: payload element <{tag.name}>")
        for attr, value in tag.attrs.items():
            name = attr.lower()
            assert not name.startswith("on"), f"{where}: {tag.name}[{attr}]"
            assert not name.startswith("hx-on"), f"{where}: {tag.name}[{attr}]"
            if name not in URL_ATTRIBUTES:
                continue  # escaped text in aria-label, value, alt...: inert
            text = " ".join(value) if isinstance(value, list) else str(value)
            # A path on this site may carry a payload in its (encoded) query: inert.
            if text.startswith("/") and not text.startswith(("//", "/\\")):
                text = text.split("?")[0]
            squashed = text.lower().replace(" ", "")
            assert "javascript:" not in squashed, f"{where}: {tag.name}[{attr}]={text}"
            assert "data:text/html" not in squashed, f"{where}: {tag.name}[{attr}]={text}"
            assert "evil.example" not in text, f"{where}: {tag.name}[{attr}]"
        if tag.name == "script":
            assert tag.get("src", "").startswith("/static/") and not tag.get_text(), (
                f"{where}: script"
            )
        if tag.name == "img":
            assert tag.get("src", "").startswith("/messaging/files/"), (
                f"{where}: img from a payload"
            )
        if tag.name == "svg":
            assert {"avatar", "icon"} & set(tag.get("class", [])), f"{where}: svg from a payload"
        if tag.name == "link":
            assert tag.get("href", "").startswith("/static/"), f"{where}: link from a payload"
        if tag.name == "meta":
            assert tag.get("name") in META_NAMES and not tag.get("http-equiv"), f"{where}: meta"
        if tag.name == "table":
            assert "ledger" in tag.get("class", []), f"{where}: table from a payload"
        if tag.name == "form":
            assert tag.get("action", "/").startswith("/"), f"{where}: form from a payload"
        if tag.name == "div" and tag.get("hx-get") == "/logout":
            raise AssertionError(f"{where}: htmx attributes from a payload")
        if tag.get("hx-swap-oob") and tag.get("id") == "main":
            raise AssertionError(f"{where}: an out-of-band swap from a payload")


@pytest.mark.parametrize("chunk", range(0, len(PAYLOADS), 9), ids=lambda c: f"payloads-{c}")
def test_payloads_stay_text_everywhere(app, chunk):
    payloads = PAYLOADS[chunk : chunk + 9]
    assert len(PAYLOADS) >= 50
    with app.app_context():
        viewer = make_member("Viewer Prime")
        billing.start_premium(viewer.id)
        handles, threads, labels, group_ids = [], [], [], []
        for n, payload in enumerate(payloads):
            author = make_member(f"A{n}")
            accounts.update_profile(
                author.id,
                accounts.ProfileInput(
                    ("X " + payload)[:100], payload[:220], payload[:100], payload
                ),
            )
            db_author = db.session.get(Member, author.id)
            db_viewer = db.session.get(Member, viewer.id)
            network.accept(
                author.id, network.invite(viewer.id, author.id, payload[:300]).invitation.id
            )
            sent = messaging.start(
                db_author,
                db_viewer,
                payload,
                uploads=[attachments.Upload(payload[:60] + ".txt", io.BytesIO(b"hello"))],
            )
            threads.append(sent.thread_id)
            handles.append(author.handle)
            # A group named with the payload, and its system lines naming the author.
            other = make_member(f"B{n}")
            network.accept(other.id, network.invite(viewer.id, other.id).invitation.id)
            group = messaging.start_group(
                db.session.get(Member, viewer.id),
                [author.id, other.id],
                payload[:100],
                payload,
            ).thread_id
            groups.rename(db.session.get(Member, author.id), group, payload[:100])
            groups.remove(db.session.get(Member, viewer.id), group, other.id)
            groups.leave(db.session.get(Member, author.id), group)
            threads.append(group)
            group_ids.append(group)
            stranger = make_member(f"S{n}")
            mail = inmail.send(
                db.session.get(Member, viewer.id),
                db.session.get(Member, stranger.id),
                payload[:200],
                payload,
            )
            threads.append(mail.thread_id)
            profile_views.record_view(author.id, viewer.id)
            reports.report(viewer.id, author.id, "other", payload, message_id=sent.message.id)
            try:
                label = organise.create_label(viewer.id, payload[:40])
            except ValidationFailed:  # blank or the same name as an earlier one
                pass
            else:
                labels.append(label.name)
                organise.set_thread_labels(viewer.id, sent.thread_id, [label.id])
        db.session.get(Member, viewer.id).role = "admin"
        db.session.commit()
    browser = Browser(app)
    browser.login(viewer)
    pages = [
        "/",
        "/messaging",
        "/messaging?filter=inmail",
        "/network",
        "/notifications",
        "/profile/views",
        "/search?q=X",
        "/premium",
        "/inmail/stats",
    ]
    pages += [f"/in/{handle}" for handle in handles]
    pages += [f"/messaging/t/{thread}" for thread in threads]
    pages += [f"/messaging/t/{group}/people?q=X" for group in group_ids]
    pages += ["/messaging/new", "/messaging/new?q=X"]
    pages += ["/messaging/labels"] + [f"/messaging?{urlencode({'label': n})}" for n in labels]
    pages += [f"/messaging/search?{urlencode({'q': p})}" for p in payloads]
    for path in pages:
        response = browser.get(path)
        assert response.status_code == 200, path
        assert_inert(response.get_data(as_text=True), path)
    for path in (
        "/messaging",
        "/search?q=X",
        "/notifications",
        "/messaging/search?q=X",
        "/messaging/new?q=X",
    ):
        assert_inert(browser.get(path, htmx=True).get_data(as_text=True), f"{path} (fragment)")
    with app.app_context():
        from linkmsg import live
        from linkmsg.models import Event

        with app.test_request_context():
            for event in db.session.scalars(db.select(Event)):
                assert_inert(live.render(event), f"event {event.id}")


def test_action_form_escapes_every_value_and_takes_the_token_of_its_context(app):
    """`action_form` is Python, not a macro: each value it writes is escaped by hand, and
    its form token is the rendering context's (a live piece's empty one, a kept list's
    marker), else the request's."""
    source = (
        "{% call action_form(action, testid, hidden=hidden, form_class=cls, hx_target=cls) %}"
        "<b>{{ name }}</b>{% endcall %}{{ action_form(action, testid, name, htmx=true) }}"
    )
    evil = '"><script>alert(1)</script>'
    with app.test_request_context("/"):
        template = app.jinja_env.from_string(source)
        values = dict(action="/a?x=" + evil, testid=evil, hidden={evil: evil}, cls=evil, name=evil)
        html = template.render(**values, csrf_token=lambda: "context-token")
        request_token = app.jinja_env.from_string(source).render(**values)
    assert_inert(html, "action_form")
    page = BeautifulSoup(html, "html.parser")
    first, second = page.find_all("form")
    assert first["action"] == first["hx-post"] == "/a?x=" + evil
    assert first["class"] == [part for part in evil.split()] and first["hx-target"] == evil
    hidden = first.find_all("input")
    assert [(i["name"], i["value"]) for i in hidden] == [
        ("csrf_token", "context-token"),
        (evil, evil),
    ]
    assert first.button["data-testid"] == evil and first.button.b.get_text() == evil
    assert second.button.get_text() == evil and second["hx-swap"] == "none"
    token = BeautifulSoup(request_token, "html.parser").find("input")["value"]
    assert token and token != "context-token"
