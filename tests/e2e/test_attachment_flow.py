"""Sending a picture and a document from the reply form — JavaScript on and off."""

from playwright.sync_api import expect

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import messaging

from .. import files
from .conftest import log_in, make_members


def test_reply_with_a_picture_and_a_document(live_server, page, tmp_path):
    app = live_server.app
    ids = make_members(app, "Alice Moreau", "Bob Stone")
    with app.app_context():
        thread_id = messaging.start(
            db.session.get(Member, ids[1]), db.session.get(Member, ids[0]), "Send me the deck?"
        ).thread_id
    picture = tmp_path / "team photo.png"
    picture.write_bytes(files.image("PNG", size=(800, 600)))
    deck = tmp_path / "deck.pptx"
    deck.write_bytes(files.ooxml("pptx"))
    bad = tmp_path / "page.png"
    bad.write_bytes(files.refused("page.png"))

    log_in(page, live_server.url, "alice-moreau@example.com")
    page.goto(f"{live_server.url}/messaging/t/{thread_id}")

    page.get_by_label("Attach files").set_input_files(str(bad))
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("form-error")).to_contain_text(
        "“page.png” is not a file type LinkMsg accepts."
    )
    expect(page.get_by_test_id("message")).to_have_count(1)

    page.get_by_label("Write a message").fill("Here you go")
    page.get_by_label("Attach files").set_input_files([str(picture), str(deck)])
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("message")).to_have_count(2)
    thumbnail = page.get_by_test_id("attachment-thumbnail")
    expect(thumbnail).to_have_attribute("alt", "team photo.png")
    expect(page.get_by_test_id("attachment-name")).to_have_text("deck.pptx")
    if page.js_enabled:
        # The thumbnail really loads (an image the browser could decode).
        page.wait_for_function(
            "() => document.querySelector('[data-testid=attachment-thumbnail]').naturalWidth > 0"
        )
        expect(page.get_by_test_id("upload-progress")).to_have_count(1)
