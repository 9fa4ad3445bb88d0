"""Profiles: the public page, the edit form, the full-profile rule in the UI."""

import pytest

from .factories import by_testid, get_member, soup, texts


def test_profile_shows_name_headline_location_about_and_initials_avatar(browser, member_factory):
    dana = member_factory(
        name="Dana Whitfield",
        headline="Talent Partner",
        location="London, UK",
        about="Hiring\nengineers",
    )
    response = browser.get(f"/in/{dana.handle}")
    assert response.status_code == 200
    assert texts(response, "profile-name") == ["Dana Whitfield"]
    assert texts(response, "profile-headline") == ["Talent Partner"]
    assert texts(response, "profile-location") == ["London, UK"]
    assert by_testid(response, "profile-about")[0].get_text() == "Hiring\nengineers"
    avatar = soup(response).select_one('[data-testid="profile"] svg[data-testid="avatar"]')
    assert avatar.find("text").get_text() == "DW"
    assert avatar["aria-label"] == "Dana Whitfield"


def test_unknown_profile_is_404(browser):
    response = browser.get("/in/nobody-here")
    assert response.status_code == 404


def test_profile_fields_are_escaped(browser, member_factory):
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    dana = member_factory(name="Dana " + payload[:60], headline=payload, about=payload)
    response = browser.get(f"/in/{dana.handle}")
    page = soup(response)
    assert not page.select("img[onerror]")
    assert all(script.get("src") for script in page.find_all("script"))
    assert texts(response, "profile-headline") == [payload]


def test_edit_profile_saves_and_shows_it(app, browser, member_factory):
    dana = member_factory(full=False, name="Dana")
    browser.login(dana)
    response = browser.post(
        "/profile/edit",
        {
            "name": "Dana Whitfield",
            "headline": "Talent Partner",
            "location": "London",
            "about": "Hi",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"/in/{dana.handle}"
    page = browser.get(response.headers["Location"])
    assert texts(page, "flash") == ["Your profile is saved."]
    assert texts(page, "profile-headline") == ["Talent Partner"]
    assert not by_testid(page, "profile-incomplete")


def test_edit_requires_login(browser):
    response = browser.get("/profile/edit")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_edit_cannot_change_another_member(app, browser, member_factory):
    dana = member_factory(name="Dana")
    eve = member_factory(name="Eve")
    browser.login(eve)
    browser.post("/profile/edit", {"name": "Eve", "headline": "h", "location": "l", "id": dana.id})
    with app.app_context():
        assert get_member(dana.id).headline == "Engineer at Example"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Enter your name."),
        ("headline", "h" * 221, "Your headline can be at most 220 characters."),
        ("location", "l" * 101, "Your location can be at most 100 characters."),
        ("about", "a" * 2601, "Your about section can be at most 2,600 characters."),
    ],
)
def test_edit_with_bad_input_shows_the_error_and_saves_nothing(
    app, browser, member_factory, field, value, message
):
    dana = member_factory(name="Dana", headline="Recruiter", location="London")
    browser.login(dana)
    form = {"name": "Dana Renamed", "headline": "New headline", "location": "Paris", "about": ""}
    form[field] = value
    response = browser.post("/profile/edit", form)
    assert response.status_code == 422
    assert texts(response, "form-error") == [message]
    with app.app_context():
        saved = get_member(dana.id)
        assert (saved.name, saved.headline, saved.location) == ("Dana", "Recruiter", "London")


def test_own_incomplete_profile_says_what_is_missing(browser, member_factory):
    dana = member_factory(full=False)
    browser.login(dana)
    response = browser.get(f"/in/{dana.handle}")
    assert "Add your headline and location" in texts(response, "profile-incomplete")[0]
    home = browser.get("/")
    assert "Add your headline and location" in texts(home, "profile-incomplete")[0]


def test_someone_elses_incomplete_profile_does_not_show_the_reminder(browser, member_factory):
    dana = member_factory(full=False)
    browser.login(member_factory())
    assert not by_testid(browser.get(f"/in/{dana.handle}"), "profile-incomplete")


def test_profile_picture_upload_replace_and_remove(app, browser, member_factory):
    import io

    from PIL import Image

    from . import files

    dana = member_factory(name="Dana Whitfield")
    browser.login(dana)
    form = {"name": "Dana Whitfield", "headline": "Recruiter", "location": "London", "about": ""}
    bad = browser.post_multipart(
        "/profile/edit",
        {**form, "name": "Renamed", "avatar": (io.BytesIO(b"<svg onload=x>"), "me.png")},
    )
    assert bad.status_code == 422
    assert texts(bad, "form-error")[0].startswith("“me.png” is not a file type LinkMsg accepts.")
    with app.app_context():
        assert (
            get_member(dana.id).name == "Dana Whitfield" and get_member(dana.id).avatar_key is None
        )

    response = browser.post_multipart(
        "/profile/edit",
        {**form, "avatar": (io.BytesIO(files.image("JPEG", size=(900, 600))), "me.jpg")},
    )
    assert response.status_code == 303
    page = browser.get(f"/in/{dana.handle}")
    img = soup(page).select_one('[data-testid="profile"] img[data-testid="avatar"]')
    assert img["src"] == f"/in/{dana.handle}/avatar" and img["alt"] == "Dana Whitfield"
    picture = browser.get(img["src"])
    assert picture.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(picture.get_data())).size == (192, 192)
    picture.close()

    browser.post_multipart("/profile/edit", {**form, "remove_avatar": "y"})
    assert browser.get(f"/in/{dana.handle}/avatar").status_code == 404
    page = browser.get(f"/in/{dana.handle}")
    assert soup(page).select_one('[data-testid="profile"] svg[data-testid="avatar"]') is not None


def test_profile_page_agrees_with_each_rule_asked_on_its_own(app, browser, member_factory):
    """The page reads the member and the whole relation in one statement: for every kind
    of relation it shows what the services say when asked one by one (degree, mutual
    connections, Connect state, Message button or why not, InMail waiting), and a member
    who blocked the viewer does not exist for them."""
    from linkmsg.extensions import db
    from linkmsg.models import Member
    from linkmsg.services import billing, blocking, degrees, inmail, messaging, network

    from .factories import connect

    names = "Ann Bob Cat Dee Eve Fay Gus Hal Ivy Jon".split()
    ann, bob, cat, dee, eve, fay, gus, hal, ivy, jon = (member_factory(name=n) for n in names)
    with app.app_context():
        connect(ann, bob)
        connect(bob, cat)  # Cat: 2nd, one mutual connection
        connect(cat, dee)  # Dee: 3rd
        billing.start_premium(ann.id)
        network.invite(ann.id, fay.id)  # sent
        network.invite(gus.id, ann.id)  # received
        blocking.block(ann.id, hal.id)  # Ann blocked Hal: shown, with the way to unblock
        blocking.block(ivy.id, ann.id)  # Ivy blocked Ann: does not exist for Ann
        get = lambda ref: db.session.get(Member, ref.id)  # noqa: E731
        inmail.send(get(ann), get(jon), "A role", "Would you talk about a role?")
        expected = {}
        for other in (bob, cat, dee, eve, fay, gus, hal, jon):
            relation = messaging.profile_relation(get(ann), get(other))
            expected[other.name] = {
                "degree": relation["degree"],
                "mutual": degrees.mutual_count(ann.id, other.id),
                "state": network.relationship(ann.id, other.id).state,
                "allowed": relation["permission"].allowed,
                "reason": relation["permission"].reason,
                "inmail_waiting": relation["inmail_waiting"] is not None,
            }
    assert [expected[n]["degree"] for n in ("Bob", "Cat", "Dee", "Eve")] == [
        "1st",
        "2nd",
        "3rd",
        "Out of network",
    ]
    assert expected["Fay"]["state"] == "sent" and expected["Gus"]["state"] == "received"
    assert expected["Hal"]["state"] == "blocked" and expected["Jon"]["inmail_waiting"]
    browser.login(ann)
    for other in (bob, cat, dee, eve, fay, gus, hal, jon):
        page = browser.get(f"/in/{other.handle}")
        assert page.status_code == 200, other.name
        mutual = texts(page, "mutual-connections")
        locked = texts(page, "message-locked-reason")
        shown = {
            "degree": texts(page, "degree-badge")[0] if texts(page, "degree-badge") else None,
            "mutual": int(mutual[0].split()[0]) if mutual else 0,
            "state": by_testid(page, "connect-control")[0]["data-state"],
            "allowed": bool(by_testid(page, "message-button")),
            "reason": locked[0] if locked else "",
            "inmail_waiting": bool(by_testid(page, "inmail-locked")),
        }
        want = dict(expected[other.name])
        if want["reason"]:
            shown["reason"] = shown["reason"][: len(want["reason"])]
        assert shown == want, other.name
    assert browser.get(f"/in/{ivy.handle}").status_code == 404
    assert browser.get(f"/in/{ann.handle}").status_code == 200  # self
