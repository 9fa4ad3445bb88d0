"""Test helpers: members made through the services, and a client that behaves like a browser."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from bs4 import BeautifulSoup

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import accounts

PASSWORD = "correct horse battery"
# Kept pieces served as they are: the suite draws every kept message and piece again to
# compare it (KEPT_HTML_VERIFY); a test of what a member is served turns that off.
AS_SERVED = pytest.mark.app_config(KEPT_HTML_VERIFY=False)
_counter = itertools.count(1)


@dataclass(frozen=True)
class MemberRef:
    """What a test keeps of a member: plain values, usable outside any app context."""

    id: int
    handle: str
    email: str
    name: str
    password: str = PASSWORD


def make_member(
    name: str | None = None,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    headline: str | None = "Engineer at Example",
    location: str | None = "Lisbon, Portugal",
    about: str = "",
    full: bool = True,
    plan: str = "free",
) -> MemberRef:
    """Register a member through the accounts service; full=False leaves the profile empty."""
    n = next(_counter)
    name = name or f"Member {n}"
    email = email or f"member{n}-{accounts.slugify(name)}@example.test"
    member = accounts.register(email, password, name)
    if full:
        accounts.update_profile(
            member.id,
            accounts.ProfileInput(
                name=name, headline=headline or "", location=location or "", about=about
            ),
        )
    if plan != "free":
        member.plan = plan
        db.session.commit()
    return MemberRef(member.id, member.handle, member.email, member.name, password)


def get_member(member_id: int) -> Member:
    db.session.expire_all()
    return db.session.get(Member, member_id)


def change_profile(ref, **changes) -> None:
    """The member's profile with `changes` (name, headline, avatar, ...), the rest as it
    is (call in an app context)."""
    member = db.session.get(Member, ref.id)
    values = {
        "name": member.name,
        "headline": member.headline,
        "location": member.location,
        "about": member.about,
    }
    accounts.update_profile(ref.id, accounts.ProfileInput(**(values | changes)))


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "lxml")


def page_token(page: BeautifulSoup) -> str:
    """The form token a parsed page was drawn with (its `csrf-token` meta)."""
    return page.find("meta", attrs={"name": "csrf-token"})["content"]


def by_testid(response, testid: str):
    return soup(response).select(f'[data-testid="{testid}"]')


def texts(response, testid: str) -> list[str]:
    return [el.get_text(" ", strip=True) for el in by_testid(response, testid)]


class Browser:
    """A test client used as a member's browser: real CSRF tokens, forms, htmx headers."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def get(self, url: str, *, htmx: bool = False, boosted: bool = False, **kwargs):
        return self.client.get(url, headers=self._headers(htmx, boosted, kwargs), **kwargs)

    def token(self) -> str:
        return page_token(soup(self.client.get("/")))

    def post(self, url: str, data=None, *, csrf: bool = True, htmx: bool = False, **kwargs):
        data = dict(data or {})
        headers = self._headers(htmx, False, kwargs)
        if csrf:
            token = self.token()
            if htmx:
                headers["X-CSRFToken"] = token
            else:
                data.setdefault("csrf_token", token)
        return self.client.post(url, data=data, headers=headers, **kwargs)

    def post_multipart(self, url: str, data: dict, *, htmx: bool = False, **kwargs):
        """A multipart POST encoded in memory (the test client's own encoder leaves a
        temporary file open for bodies over 500 KB)."""
        from werkzeug.datastructures import FileStorage, MultiDict
        from werkzeug.test import stream_encode_multipart

        fields = MultiDict()
        for key, value in data.items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, tuple):
                    item = FileStorage(stream=item[0], filename=item[1])
                fields.add(key, item)
        headers = self._headers(htmx, False, kwargs)
        token = self.token()
        if htmx:
            headers["X-CSRFToken"] = token
        else:
            fields.setdefault("csrf_token", token)
        stream, length, boundary = stream_encode_multipart(fields, use_tempfile=False)
        return self.client.post(
            url,
            data=stream.getvalue(),
            content_type=f"multipart/form-data; boundary={boundary}",
            headers=headers,
            **kwargs,
        )

    def login(self, member: MemberRef | str, password: str | None = None):
        email = member if isinstance(member, str) else member.email
        password = password or (member.password if isinstance(member, MemberRef) else PASSWORD)
        response = self.post("/login", {"email": email, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return response

    def logout(self):
        return self.post("/logout")

    @staticmethod
    def _headers(htmx: bool, boosted: bool, kwargs) -> dict:
        headers = dict(kwargs.pop("headers", {}) or {})
        if htmx or boosted:
            headers["HX-Request"] = "true"
        if boosted:
            headers["HX-Boosted"] = "true"
        return headers


def connect(a: MemberRef | int, b: MemberRef | int) -> None:
    """Connect two members the way members do: an invitation, accepted (call in an app context)."""
    from linkmsg.services import network

    a_id = a if isinstance(a, int) else a.id
    b_id = b if isinstance(b, int) else b.id
    result = network.invite(a_id, b_id)
    if not result.connected:
        network.accept(b_id, result.invitation.id)


def is_fragment(response) -> bool:
    """An htmx fragment: markup without the page around it."""
    text = response.get_data(as_text=True).lower()
    return "<html" not in text and "<body" not in text


def launch_team():
    """Ava Ames, connected to Ben Bell, Cy Cole and Dee Diaz, starts the group "Launch
    team" with Ben and Cy (call in an app context): (ava, ben, cy, dee, thread_id)."""
    from linkmsg.services import messaging

    ava, ben, cy, dee = (make_member(n) for n in ("Ava Ames", "Ben Bell", "Cy Cole", "Dee Diaz"))
    for other in (ben, cy, dee):
        connect(ava, other)
    sent = messaging.start_group(
        db.session.get(Member, ava.id), [ben.id, cy.id], "Launch team", "Kick-off"
    )
    return ava, ben, cy, dee, sent.thread_id
