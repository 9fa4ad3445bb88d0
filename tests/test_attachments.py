"""Attachments with real files: what is accepted, what is refused, who may download."""

import io
import os

import pytest
from PIL import Image

from linkmsg.extensions import db
from linkmsg.models import Attachment, Member, Message

from . import files
from .factories import Browser, by_testid, connect, make_member, soup, texts


@pytest.fixture
def pair(app, member_factory):
    ann, bob = member_factory(name="Ann Lee"), member_factory(name="Bob Stone")
    with app.app_context():
        connect(ann, bob)
    return ann, bob


def stored_files(app) -> list[str]:
    found = []
    for folder, _, names in os.walk(app.config["UPLOAD_FOLDER"]):
        found += [os.path.join(folder, n) for n in names]
    return found


def counts(app):
    with app.app_context():
        return (
            db.session.scalar(db.select(db.func.count()).select_from(Message)),
            db.session.scalar(db.select(db.func.count()).select_from(Attachment)),
        )


def send_files(browser, handle, uploads, body="Files attached"):
    """Send files the way the page does: the compose form, or the thread's reply form."""
    target = f"/messaging/new/{handle}"
    page = browser.get(target)
    if page.status_code == 303:
        target = page.headers["Location"]
        page = browser.get(target)
    key = soup(page).find("input", attrs={"name": "idempotency_key"})["value"]
    data = {
        "body": body,
        "idempotency_key": key,
        "files": [(io.BytesIO(content), name) for name, content in uploads],
    }
    return browser.post_multipart(target, data)


def test_each_allowed_type_is_accepted_and_shown(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    uploads = [(name, make()) for name, (make, _) in files.ALLOWED.items()]
    response = send_files(browser, bob.handle, uploads)
    assert response.status_code == 303, texts(response, "form-error")
    with app.app_context():
        saved = {a.name: a.content_type for a in db.session.scalars(db.select(Attachment))}
    assert saved == {name: mime for name, (_, mime) in files.ALLOWED.items()}
    page = browser.get(response.headers["Location"].split("#")[0])
    shown = by_testid(page, "attachment")
    assert len(shown) == 10
    kinds = {
        item.find("img")["alt"]
        if item.find("img")
        else item.select_one('[data-testid="attachment-name"]').get_text(): item["data-kind"]
        for item in shown
    }
    assert kinds["photo.png"] == "image" and kinds["report.pdf"] == "file"
    card = next(i for i in shown if i["data-kind"] == "file" and "budget.xlsx" in i.get_text())
    assert (
        "Excel spreadsheet" in card.get_text()
        and "bytes" in card.get_text()
        or "KB" in card.get_text()
    )


def test_a_message_can_be_attachments_only(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    response = send_files(browser, bob.handle, [("photo.png", files.image("PNG"))], body="")
    assert response.status_code == 303
    inbox = browser.get("/messaging")
    assert texts(inbox, "thread-preview") == ["You: Sent 1 attachment"]


@pytest.mark.parametrize("name", list(files.REFUSED))
def test_refused_files_send_nothing_and_keep_nothing(app, browser, pair, name):
    ann, bob = pair
    browser.login(ann)
    response = send_files(
        browser, bob.handle, [("photo.png", files.image("PNG")), (name, files.refused(name))]
    )
    assert response.status_code == 422
    errors = texts(response, "form-error")
    assert len(errors) == 1 and f"“{name}”" in errors[0]
    assert counts(app) == (0, 0)
    assert stored_files(app) == []


def test_html_renamed_png_is_refused_with_the_reason(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    response = send_files(browser, bob.handle, [("page.png", files.refused("page.png"))])
    assert texts(response, "form-error")[0].startswith(
        "“page.png” is not a file type LinkMsg accepts."
    )


def test_a_file_whose_name_lies_is_refused(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    response = send_files(browser, bob.handle, [("photo.pdf", files.image("PNG"))])
    assert texts(response, "form-error") == [
        "“photo.pdf” does not contain what its name says: it is a PNG image, not a .pdf file."
    ]
    assert counts(app) == (0, 0)


def test_eleven_files_are_refused(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    uploads = [(f"note{i}.txt", b"hello") for i in range(11)]
    response = send_files(browser, bob.handle, uploads)
    assert response.status_code == 422
    assert texts(response, "form-error") == ["You can attach at most 10 files to a message."]
    assert counts(app) == (0, 0) and stored_files(app) == []


def test_an_oversized_file_is_refused(app_factory, member_factory, pair):
    ann, bob = pair
    small = app_factory(MAX_ATTACHMENT_BYTES=1024 * 1024)
    from .factories import Browser

    browser = Browser(small)
    browser.login(ann)
    ok = send_files(browser, bob.handle, [("exact.txt", b"a" * (1024 * 1024))])
    assert ok.status_code == 303
    response = send_files(browser, bob.handle, [("big.txt", b"a" * (1024 * 1024 + 1))])
    assert response.status_code == 422
    assert texts(response, "form-error") == [
        "“big.txt” is larger than 1 MB, the most an attachment can be."
    ]
    assert counts(small) == (1, 1)


def test_downloads_are_for_the_two_members_only(app, browser, pair, member_factory):
    ann, bob = pair
    eve = member_factory(name="Eve")
    browser.login(ann)
    send_files(
        browser, bob.handle, [("photo.png", files.image("PNG")), ("report.pdf", files.pdf())]
    )
    with app.app_context():
        ids = {a.name: a.id for a in db.session.scalars(db.select(Attachment))}
    for who, expected in ((bob, 200), (eve, 404)):
        browser.logout()
        browser.login(who)
        for path in (
            f"/messaging/files/{ids['photo.png']}",
            f"/messaging/files/{ids['photo.png']}/thumbnail",
            f"/messaging/files/{ids['report.pdf']}",
        ):
            response = browser.get(path)
            assert response.status_code == expected, (who, path)
            response.close()
    assert browser.get("/messaging/files/99999").status_code == 404
    browser.logout()
    assert browser.get(f"/messaging/files/{ids['report.pdf']}").status_code == 302


def test_download_headers_and_range_requests(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    pdf = files.pdf()
    send_files(browser, bob.handle, [("Q3 report.pdf", pdf), ("photo.png", files.image("PNG"))])
    with app.app_context():
        ids = {a.name: a.id for a in db.session.scalars(db.select(Attachment))}
    response = browser.get(f"/messaging/files/{ids['Q3 report.pdf']}")
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "Q3" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data() == pdf
    response.close()
    partial = browser.get(
        f"/messaging/files/{ids['Q3 report.pdf']}", headers={"Range": "bytes=0-9"}
    )
    assert partial.status_code == 206
    assert partial.get_data() == pdf[:10]
    assert partial.headers["Content-Range"] == f"bytes 0-9/{len(pdf)}"
    partial.close()
    image = browser.get(f"/messaging/files/{ids['photo.png']}")
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["Content-Disposition"].startswith("inline;")
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    image.close()


def test_the_thumbnail_of_a_large_image_is_small(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    big = io.BytesIO()
    Image.effect_noise((4000, 3000), 64).convert("RGB").save(big, "JPEG", quality=95)
    send_files(browser, bob.handle, [("huge.jpg", big.getvalue())])
    with app.app_context():
        attachment = db.session.scalar(db.select(Attachment))
        assert (attachment.width, attachment.height) == (4000, 3000)
    response = browser.get(f"/messaging/files/{attachment.id}/thumbnail")
    assert response.headers["Content-Type"] == "image/webp"
    thumb = Image.open(io.BytesIO(response.get_data()))
    assert max(thumb.size) <= 360
    assert len(response.get_data()) < 100_000 < len(big.getvalue())
    response.close()


def test_a_decompression_bomb_is_refused(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    bomb = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(bomb, "PNG")  # ~144 megapixels, a few KB
    response = send_files(browser, bob.handle, [("bomb.png", bomb.getvalue())])
    assert response.status_code == 422
    assert texts(response, "form-error") == [
        "“bomb.png” is too large an image to process (12,000 × 12,000 pixels): "
        "the most is 16 megapixels, or 64 for a JPEG."
    ]
    assert counts(app) == (0, 0) and stored_files(app) == []


def test_an_image_over_max_image_pixels_is_refused_but_a_jpeg_decodes_at_scale(app_factory):
    app = app_factory(MAX_IMAGE_PIXELS=1_000_000)
    with app.app_context():
        ann, bob = make_member("Ann Lee"), make_member("Bob Stone")
        connect(ann, bob)
    browser = Browser(app)
    browser.login(ann)
    png = files.image("PNG", size=(1001, 1000))
    response = send_files(browser, bob.handle, [("wide.png", png)])
    assert response.status_code == 422
    assert texts(response, "form-error") == [
        "“wide.png” is too large an image to process (1,001 × 1,000 pixels): "
        "the most is 1 megapixels, or 4 for a JPEG."
    ]
    assert counts(app) == (0, 0) and stored_files(app) == []
    # 3.8 megapixels of JPEG decode at 1/8 scale: accepted, the thumbnail made.
    jpeg = files.image("JPEG", size=(2000, 1900))
    assert send_files(browser, bob.handle, [("photo.jpg", jpeg)]).status_code == 303
    with app.app_context():
        attachment = db.session.scalar(db.select(Attachment))
        assert (attachment.width, attachment.height) == (2000, 1900)
        assert attachment.thumb_key is not None
    jpeg = files.image("JPEG", size=(2100, 2000))  # 4.2 megapixels: too many even so
    assert send_files(browser, bob.handle, [("big.jpg", jpeg)]).status_code == 422


def test_a_thumbnail_is_turned_upright_from_the_exif_orientation(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    sideways = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.new("RGB", (800, 400), (200, 30, 30)).save(sideways, "JPEG", exif=exif.tobytes())
    send_files(browser, bob.handle, [("portrait.jpg", sideways.getvalue())])
    with app.app_context():
        attachment = db.session.scalar(db.select(Attachment))
    response = browser.get(f"/messaging/files/{attachment.id}/thumbnail")
    width, height = Image.open(io.BytesIO(response.get_data())).size
    response.close()
    assert height > width


def test_file_names_are_sanitised_for_display(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    send_files(
        browser, bob.handle, [("..\\..\\etc/<img src=x onerror=alert(1)>\x07.txt", b"hello")]
    )
    with app.app_context():
        attachment = db.session.scalar(db.select(Attachment))
        assert attachment.name == "<img src=x onerror=alert(1)>.txt"
        assert "img" not in attachment.storage_key and "etc" not in attachment.storage_key
    thread = browser.get("/messaging")
    page = browser.get(by_testid(thread, "thread-row")[0].find("a")["href"])
    assert soup(page).select("img[onerror]") == []
    assert texts(page, "attachment-name") == ["<img src=x onerror=alert(1)>.txt"]
    download = browser.get(f"/messaging/files/{attachment.id}")
    assert download.headers["Content-Disposition"].startswith("attachment;")
    download.close()


def test_reply_with_attachment_via_htmx(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    first = send_files(browser, bob.handle, [("notes.txt", b"hello")])
    thread_url = first.headers["Location"].split("#")[0]
    page = browser.get(thread_url)
    key = soup(page).find("input", attrs={"name": "idempotency_key"})["value"]
    response = browser.post_multipart(
        thread_url,
        {
            "body": "",
            "idempotency_key": key,
            "files": [(io.BytesIO(files.image("PNG")), "shot.png")],
        },
        htmx=True,
    )
    assert response.status_code == 200
    assert [
        img["alt"] for img in soup(response).select('[data-testid="attachment-thumbnail"]')
    ] == ["shot.png"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Member)) == 2
    assert counts(app) == (2, 2)
