"""What templates build once per process (issue 20): URLs (`templating.kept_url_for` and
`id_url`), the same URL `url_for` builds wherever the app is mounted, and icons
(`templating.icon`), each its file as an include renders it."""

from __future__ import annotations

import os

import pytest
from flask import url_for

from linkmsg import templating

from .factories import Browser, make_member, soup


def test_nothing_but_its_values_and_the_mount_point_makes_a_url(app):
    # A `url_defaults` function would add values a kept URL was built without.
    assert not any(app.url_default_functions.values())
    assert not any(app.url_value_preprocessors.values())


def test_kept_urls_are_the_urls_url_for_builds_wherever_the_app_is_mounted(app):
    cases = [
        ("messaging.inbox", {}),
        ("messaging.inbox", {"filter": "unread"}),
        ("messaging.inbox", {"filter": None, "label": "Work & play", "before": 12}),
        ("messaging.thread", {"thread_id": 7, "_anchor": "reply"}),
        ("profiles.show", {"handle": "ava-ames"}),
        ("static", {"filename": "js/app.js"}),
    ]
    for root in ("", "/linkmsg"):
        with app.test_request_context("/", base_url=f"http://localhost{root}/"):
            for endpoint, values in cases:
                expected = url_for(endpoint, **values)
                assert expected.startswith(f"{root}/")
                assert templating.kept_url_for(endpoint, **values) == expected
                assert templating.kept_url_for(endpoint, **values) == expected  # kept
            # URLs of one id: the stand-in's parts are kept per mount point too.
            for anchor in (None, "reply"):
                for thread_id in (42, 7):
                    expected = url_for("messaging.thread", _anchor=anchor, thread_id=thread_id)
                    assert templating.id_url("messaging.thread", anchor, thread_id=thread_id) == (
                        expected
                    )
        with app.test_request_context("/", base_url="https://linkmsg.example"):
            assert templating.kept_url_for("messaging.inbox", _external=True) == (
                "https://linkmsg.example/messaging"
            )


def test_a_page_behind_a_mount_point_links_within_it(app):
    with app.app_context():
        ava = make_member("Ava Ames")
    browser = Browser(app)
    browser.login(ava)
    browser.get("/messaging")  # URLs kept for the root
    page = soup(browser.get("/messaging", base_url="http://localhost/linkmsg/"))
    links = [a["href"] for a in page.select('[data-testid^="filter-"]')]
    assert links and all(href.startswith("/linkmsg/messaging") for href in links), links


def test_an_icon_is_its_file_as_an_include_renders_it(app):
    folder = os.path.join(app.root_path, "templates", "partials", "icons")
    names = sorted(name.removesuffix(".svg") for name in os.listdir(folder))
    assert "archive" in names
    with app.test_request_context("/"):
        for name in names:
            included = app.jinja_env.from_string(
                '{% include "partials/icons/' + name + '.svg" %}'
            ).render()
            assert str(templating.icon(name)) == included
            assert templating.icon(name) is templating.icon(name)  # read once
        with pytest.raises(ValueError):
            templating.icon("../../base")
