"""The disk is full: an upload is answered 507 with the reason next to the file field,
what was typed stays in the form, nothing is half-saved, and the operator gets one log line.

UPLOAD_FOLDER is a 1 MB tmpfs, so the write fails with ENOSPC from the kernel itself.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess

import pytest
from PIL import Image

from linkmsg.extensions import db
from linkmsg.models import Attachment, Message

from . import files
from .factories import by_testid, connect, get_member, soup, texts

TOO_BIG_FOR_THE_DISK = 2 * 1024 * 1024


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs where the app keeps uploads (build_app's UPLOAD_FOLDER)."""
    folder = tmp_path / "uploads"
    folder.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.fixture
def pair(app, member_factory, full_disk):
    ann, bob = member_factory(name="Ann Lee"), member_factory(name="Bob Stone")
    with app.app_context():
        connect(ann, bob)
    return ann, bob


def stored_files(folder) -> list[str]:
    return [os.path.join(path, name) for path, _, names in os.walk(folder) for name in names]


def counts(app):
    with app.app_context():
        return (
            db.session.scalar(db.select(db.func.count()).select_from(Message)),
            db.session.scalar(db.select(db.func.count()).select_from(Attachment)),
        )


def problems(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def form_fields(page, selector: str) -> dict:
    form = soup(page).select_one(selector)
    return {
        field["name"]: field.get("value", "")
        for field in form.select("input[name]")
        if field.get("type") != "file"
    }


def assert_not_stored(response, status: int = 507):
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    errors = texts(response, "form-error")
    assert len(errors) == 1
    assert errors[0].startswith("Your file could not be stored: LinkMsg has run out of storage")


def test_a_message_whose_file_finds_the_disk_full_is_refused_507_and_keeps_the_text(
    app, browser, pair, full_disk, caplog
):
    ann, bob = pair
    browser.login(ann)
    page = browser.get(f"/messaging/new/{bob.handle}")
    data = {
        **form_fields(page, '[data-testid="compose-form"]'),
        "body": "Here is the deck for Thursday",
        "files": [
            (io.BytesIO(files.image("PNG")), "photo.png"),  # fits, then must go again
            (io.BytesIO(b"a" * TOO_BIG_FOR_THE_DISK), "notes.txt"),
        ],
    }
    caplog.clear()
    response = browser.post_multipart(f"/messaging/new/{bob.handle}", data)

    assert_not_stored(response)
    body = soup(response).select_one('[data-testid="compose-form"] textarea[name="body"]')
    assert body.get_text() == "Here is the deck for Thursday"
    assert counts(app) == (0, 0)
    assert stored_files(full_disk) == []
    logged = problems(caplog)
    assert len(logged) == 1 and "no space left" in logged[0].getMessage().lower()
    assert logged[0].levelno == logging.ERROR

    # The same form sent again without the file goes through: nothing was half-kept.
    retry = browser.post_multipart(
        f"/messaging/new/{bob.handle}",
        {**form_fields(page, '[data-testid="compose-form"]'), "body": "Deck to follow"},
    )
    assert retry.status_code == 303
    assert counts(app) == (1, 0)


def test_an_htmx_reply_whose_file_finds_the_disk_full_keeps_the_reply_form(
    app, browser, pair, full_disk
):
    ann, bob = pair
    browser.login(ann)
    first = browser.post_multipart(
        f"/messaging/new/{bob.handle}",
        {
            **form_fields(browser.get(f"/messaging/new/{bob.handle}"), "form"),
            "body": "Hello Bob",
        },
    )
    thread_path = first.headers["Location"].split("#", 1)[0]
    page = browser.get(thread_path)
    response = browser.post_multipart(
        thread_path,
        {
            **form_fields(page, '[data-testid="reply-form"]'),
            "body": "And the numbers",
            "files": [(io.BytesIO(b"1,2\n" * (TOO_BIG_FOR_THE_DISK // 4)), "numbers.csv")],
        },
        htmx=True,
    )
    assert_not_stored(response)
    assert response.headers["HX-Retarget"] == "#reply"
    body = soup(response).select_one('[data-testid="reply-form"] textarea[name="body"]')
    assert body.get_text() == "And the numbers"
    assert counts(app) == (1, 0)
    assert stored_files(full_disk) == []


def test_a_profile_picture_that_finds_the_disk_full_is_refused_507(
    app, browser, member_factory, full_disk, caplog
):
    dana = member_factory(name="Dana Whitfield")
    browser.login(dana)
    noise = Image.frombytes("RGB", (900, 900), os.urandom(900 * 900 * 3))
    picture = io.BytesIO()
    noise.save(picture, "PNG")  # about 2.4 MB: random pixels do not compress
    assert picture.tell() > TOO_BIG_FOR_THE_DISK
    picture.seek(0)
    form = {"name": "Dana W.", "headline": "Recruiter", "location": "London", "about": ""}
    caplog.clear()
    response = browser.post_multipart("/profile/edit", {**form, "avatar": (picture, "me.png")})

    assert response.status_code == 507
    assert texts(response, "form-error") == [
        "Your picture could not be stored: LinkMsg has run out of storage space. "
        "Nothing was changed; please try again later."
    ]
    assert soup(response).select_one('input[name="name"]')["value"] == "Dana W."
    with app.app_context():
        member = get_member(dana.id)
        assert member.name == "Dana Whitfield" and member.avatar_key is None
    assert stored_files(full_disk) == []
    assert len(problems(caplog)) == 1
    assert (
        by_testid(browser.get(f"/in/{dana.handle}"), "profile-name")[0].get_text(strip=True)
        == "Dana Whitfield"
    )
