"""The shell every page shares: headers, the layout, htmx, health, migrations, demo data."""

import re

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from linkmsg.extensions import db
from linkmsg.models import Member, include_object

from .factories import by_testid, soup


def test_every_page_sends_a_csp_that_allows_scripts_from_self_only(browser):
    response = browser.get("/login")
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/login", "/register"])
def test_pages_have_no_inline_scripts_or_handlers(browser, path):
    page = soup(browser.get(path))
    assert all(script.get("src") for script in page.find_all("script"))
    for tag in page.find_all(True):
        assert not [attr for attr in tag.attrs if attr.startswith("on")], tag


def test_layout_loads_the_vendored_htmx_and_boosts_navigation(browser):
    page = soup(browser.get("/"))
    sources = [script["src"] for script in page.find_all("script")]
    assert "/static/js/vendor/htmx-2.0.8.min.js" in sources
    assert page.body["hx-boost"] == "true"
    assert page.find("meta", attrs={"name": "csrf-token"})["content"]
    script = browser.get("/static/js/vendor/htmx-2.0.8.min.js")
    assert script.status_code == 200
    assert b'version:"2.0.8"' in script.get_data()
    script.close()


def test_member_navigation_has_messaging_slot_and_me_menu(browser, member_factory):
    dana = member_factory(name="Dana Whitfield")
    browser.login(dana)
    nav = soup(browser.get("/")).find("nav", attrs={"aria-label": "Main"})
    assert nav.find(id="unread-badge-slot") is not None or "Messaging" not in nav.get_text()
    assert "Me" in nav.get_text()
    assert nav.find("a", href=f"/in/{dana.handle}")


def test_html_responses_vary_on_hx_request(browser):
    assert "HX-Request" in browser.get("/login").headers["Vary"]


def test_unknown_page_is_a_friendly_404(browser):
    response = browser.get("/no/such/page")
    assert response.status_code == 404
    assert by_testid(response, "error")[0]["data-status"] == "404"


def test_healthz_reports_the_database(browser):
    response = browser.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok"}}


def test_healthz_reports_redis_when_configured(app_factory):
    from .conftest import require_redis

    up = app_factory(REDIS_URL=require_redis()).test_client().get("/healthz")
    assert up.status_code == 200
    assert up.json["checks"] == {"database": "ok", "redis": "ok"}
    down = app_factory(REDIS_URL="redis://127.0.0.1:1/0").test_client().get("/healthz")
    assert down.status_code == 503
    assert down.json["checks"]["redis"].startswith("error")


def test_migrations_build_exactly_the_models(ctx):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_seed_demo_loads_members_once_with_full_profiles(ctx, runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    match = re.search(r"Log in as (\S+) with password '([^']+)'", result.output)
    assert match
    members = db.session.scalars(db.select(Member)).all()
    assert len(members) >= 30
    assert all(m.headline and m.location for m in members)
    again = runner.invoke(args=["seed-demo"])
    assert "already loaded" in again.output
    assert db.session.scalar(db.select(db.func.count(Member.id))) == len(members)


def test_seeded_member_can_log_in_with_the_printed_password(app, runner, browser):
    result = runner.invoke(args=["seed-demo"])
    email, password = re.search(r"Log in as (\S+) with password '([^']+)'", result.output).groups()
    assert browser.post("/login", {"email": email, "password": password}).status_code == 303


@pytest.mark.parametrize(
    "path", ["/", "/login", "/healthz", "/static/css/app.css", "/no/such/page"]
)
def test_security_headers_on_every_response(browser, path):
    response = browser.get(path)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    response.close()


def test_session_cookie_is_secure_when_served_over_https(app_factory, member_factory):
    from .factories import Browser

    app = app_factory(SESSION_COOKIE_SECURE=True)
    browser = Browser(app)
    member = member_factory()
    browser.client.get("/login", base_url="https://localhost")
    token = soup(browser.client.get("/login", base_url="https://localhost")).find(
        "meta", attrs={"name": "csrf-token"}
    )["content"]
    browser.client.post(
        "/login",
        data={"email": member.email, "password": member.password, "csrf_token": token},
        base_url="https://localhost",
    )
    cookie = browser.client.get_cookie("session", domain="localhost")
    assert cookie is not None and cookie.secure and cookie.http_only and cookie.same_site == "Lax"


def test_boosted_navigation_records_its_address(browser, member_factory):
    browser.login(member_factory())
    response = browser.get("/messaging?filter=unread", boosted=True)
    assert response.headers["HX-Push-Url"] == "/messaging?filter=unread"
    assert "HX-Push-Url" not in browser.get("/messaging?filter=unread", htmx=True).headers
