"""Login throttling and sign-up limits: a guesser is slowed down, the owner is never locked
out from their own client, counts hold under parallel requests, proxies are believed
only when configured."""

import re
import time

import pytest

from linkmsg.extensions import db
from linkmsg.models import Member

from .conftest import require_redis
from .factories import PASSWORD, Browser, make_member, texts
from .live import LiveServer
from .parallel import post_together

ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}
OWNER = {"REMOTE_ADDR": "198.51.100.7"}


def attempt(browser: Browser, email: str, password: str, **kwargs) -> int:
    return browser.post("/login", {"email": email, "password": password}, **kwargs).status_code


def member(app, name="Ann"):
    with app.app_context():
        return make_member(name)


def test_failures_from_one_client_stop_that_client_only(app_factory):
    app = app_factory(LOGIN_ACCOUNT_CLIENT_RATE_LIMIT="3 per 15 minutes")
    ann = member(app)
    attacker = Browser(app)
    for _ in range(3):
        assert attempt(attacker, ann.email, "wrong password", environ_base=ATTACKER) == 401
    response = attacker.post(
        "/login", {"email": ann.email.upper(), "password": PASSWORD}, environ_base=ATTACKER
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    [message] = texts(response, "form-error")
    assert message.startswith("Too many failed attempts to log in to this account from here.")
    assert re.search(r"Try again in \d+ (minutes|seconds)", message)
    assert texts(attacker.get("/", environ_base=ATTACKER), "logout") == []

    # The owner, from their own address, is not affected.
    owner = Browser(app)
    assert attempt(owner, ann.email, PASSWORD, environ_base=OWNER) == 303


def test_the_owners_known_browser_logs_in_whatever_the_account_wide_count(app_factory):
    app = app_factory(LOGIN_ACCOUNT_RATE_LIMIT="4 per hour")
    ann = member(app)
    owner = Browser(app)
    assert attempt(owner, ann.email, PASSWORD, environ_base=OWNER) == 303
    owner.logout()
    # Guesses from many addresses use up the account-wide allowance...
    for n in range(4):
        guesser = Browser(app)
        assert (
            attempt(guesser, ann.email, "nope", environ_base={"REMOTE_ADDR": f"192.0.2.{n}"}) == 401
        )
    newcomer = Browser(app)
    assert attempt(newcomer, ann.email, PASSWORD, environ_base={"REMOTE_ADDR": "192.0.2.99"}) == 429
    # ...but the browser the owner logged in with before is theirs: it still gets in, even
    # from an address the attacker shares.
    assert attempt(owner, ann.email, PASSWORD, environ_base={"REMOTE_ADDR": "192.0.2.1"}) == 303


def test_failures_per_address_across_accounts(app_factory):
    app = app_factory(LOGIN_ADDRESS_RATE_LIMIT="4 per 15 minutes")
    browser = Browser(app)
    for n in range(4):
        assert attempt(browser, f"nobody{n}@example.com", "wrong password") == 401
    assert attempt(browser, "someone@example.com", "wrong password") == 429


def test_successful_logins_do_not_count(app_factory):
    app = app_factory(LOGIN_ACCOUNT_CLIENT_RATE_LIMIT="2 per 15 minutes")
    ann = member(app)
    for _ in range(4):
        Browser(app).login(ann)


@pytest.mark.parametrize("proxies", [0, 1])
def test_x_forwarded_for_decides_the_client_only_behind_trusted_proxies(app_factory, proxies):
    app = app_factory(TRUSTED_PROXIES=proxies, LOGIN_ACCOUNT_CLIENT_RATE_LIMIT="2 per 15 minutes")
    ann = member(app)
    # Every request arrives from the proxy, 127.0.0.1; the header names the real client.
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    for _ in range(2):
        assert attempt(Browser(app), ann.email, "wrong", headers=attacker) == 401
    owner = Browser(app).post(
        "/login",
        {"email": ann.email, "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    # Behind a trusted proxy the owner is a different client; without one, the header is
    # ignored and both are the proxy's address.
    assert owner.status_code == (303 if proxies else 429)


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_parallel_guesses_never_get_more_tries_than_the_limit(app_factory, storage):
    overrides = {"LOGIN_ACCOUNT_CLIENT_RATE_LIMIT": "5 per 15 minutes"}
    if storage == "redis":
        overrides["RATELIMIT_STORAGE_URI"] = require_redis()
    app = app_factory(**overrides)
    ann = member(app)
    with LiveServer(app) as server:
        form = {"email": ann.email, "password": "wrong guess"}
        statuses = post_together(server.url, "/login", "/login", form, 24)
    assert len(statuses) == 24
    assert statuses.count(401) == 5
    assert statuses.count(429) == 19


def test_sign_ups_per_address(app_factory):
    app = app_factory(REGISTER_RATE_LIMIT="3 per hour")
    browser = Browser(app)
    for n in range(3):
        form = {"name": f"Person {n}", "email": f"p{n}@example.test", "password": PASSWORD}
        assert browser.post("/register", form).status_code == 303
        browser.logout()
    form = {"name": "Person 4", "email": "p4@example.test", "password": PASSWORD}
    assert browser.post("/register", form).status_code == 429
    assert Browser(app).post("/register", form, environ_base=OWNER).status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Member.id))) == 4


def test_a_taken_address_does_not_answer_faster(app_factory):
    # A real, slow hash: without equal work, a taken address answers in a fraction.
    app = app_factory(PASSWORD_HASH_METHOD="scrypt", REGISTER_RATE_LIMIT="100 per hour")
    taken = member(app, "Dana")

    def timed(email: str) -> float:
        browser = Browser(app)
        form = {"name": "Dana", "email": email, "password": "grapefruit telescope minor"}
        token = browser.token()
        started = time.perf_counter()
        browser.client.post("/register", data={**form, "csrf_token": token})
        return time.perf_counter() - started

    free = [timed(f"new{n}@example.test") for n in range(5)]
    used = [timed(taken.email) for _ in range(5)]
    # The fastest of each: noise from a busy machine only adds. Without the hash on the
    # taken path its answer takes a few hundredths of the other's.
    assert min(used) > 0.3 * min(free), (used, free)


def test_logins_are_throttled_with_the_app_wide_limits_switched_off(app_factory):
    """RATELIMIT_ENABLED=False leaves Flask-Limiter without a store: logging in still
    works (it was a 500), and a guesser is still slowed down, counted in the process."""
    app = app_factory(RATELIMIT_ENABLED=False, LOGIN_ACCOUNT_CLIENT_RATE_LIMIT="3 per 15 minutes")
    ann = member(app)
    owner = Browser(app)
    assert attempt(owner, ann.email, PASSWORD, environ_base=OWNER) == 303
    attacker = Browser(app)
    for _ in range(3):
        assert attempt(attacker, ann.email, "wrong password", environ_base=ATTACKER) == 401
    assert attempt(attacker, ann.email, PASSWORD, environ_base=ATTACKER) == 429
