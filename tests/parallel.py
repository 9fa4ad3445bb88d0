"""Overlapping requests through a real server, as members make them.

The app listens on a real socket (`LiveServer`: a threaded WSGI server, one thread per
request, each with its own database connection); each member's browser is an httpx
client logged in through the login form, with the CSRF token scraped from a page; the
requests of a race wait at a barrier and are released together. After a race,
`assert_consistent` runs `flask check-integrity`.

    with LiveServer(app) as server:
        rae = log_in(server.url, rae_ref)
        token = csrf_token(rae, "/messaging")
        responses = in_parallel([lambda: rae.post(url, data={"csrf_token": token})] * 8)
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

import httpx
from bs4 import BeautifulSoup

from .factories import PASSWORD, MemberRef
from .live import LiveServer

__all__ = [
    "LiveServer",
    "assert_consistent",
    "csrf_token",
    "in_parallel",
    "log_in",
    "page",
    "post_together",
    "posting",
    "statuses",
    "tabs",
]

T = TypeVar("T")

# Enough database connections for every request of a race at once (pass to the app).
ENGINE_OPTIONS = {"pool_size": 24, "max_overflow": 8, "pool_timeout": 30}


def log_in(base_url: str, member: MemberRef | str, password: str = PASSWORD) -> httpx.Client:
    """A member's browser: logged in through the form, with its own session cookie."""
    email = member.email if isinstance(member, MemberRef) else member
    if isinstance(member, MemberRef):
        password = member.password
    client = httpx.Client(base_url=base_url, timeout=60)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client, "/login")},
    )
    assert response.status_code == 303, response.text[:500]
    return client


def tabs(browser: httpx.Client, count: int) -> list[httpx.Client]:
    """`count` tabs of one browser: separate connections, the same session cookie."""
    return [
        httpx.Client(base_url=browser.base_url, cookies=browser.cookies, timeout=60)
        for _ in range(count)
    ]


def page(client: httpx.Client, path: str) -> BeautifulSoup:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return BeautifulSoup(response.text, "lxml")


def csrf_token(client: httpx.Client, path: str = "/") -> str:
    """The CSRF token a page gives this browser's session (the meta tag every page has)."""
    return BeautifulSoup(client.get(path).text, "lxml").find("meta", attrs={"name": "csrf-token"})[
        "content"
    ]


def in_parallel(calls: Sequence[Callable[[], T]], timeout: float = 60) -> list[T]:
    """Run every call in its own thread, all released at once by a barrier; their
    results in order. An exception in any call is raised here."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = call()
        except BaseException as error:  # handed to the test's thread below
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(index, call), daemon=True)
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a request never finished"
    if errors:
        raise errors[0]
    return results


def posting(client: httpx.Client, path: str, data: dict) -> Callable[[], httpx.Response]:
    """A form POST to make later (one call of `in_parallel`)."""
    return lambda: client.post(path, data=data)


def statuses(responses: Sequence[httpx.Response]) -> Counter:
    """How many responses had each status code, e.g. Counter({303: 1, 409: 7})."""
    return Counter(response.status_code for response in responses)


def assert_consistent(app) -> None:
    """`flask check-integrity` finds nothing wrong."""
    result = app.test_cli_runner().invoke(args=["check-integrity"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK"), result.output


def post_together(
    base_url: str,
    form_page: str,
    path: str,
    form: dict,
    count: int,
    *,
    login: tuple[str, str] | None = None,
) -> list[int]:
    """POST `form` to `path` from `count` browsers at once, each with its own session
    (logged in with `login`, an (email, password), when given) and the CSRF token of
    `form_page`. Returns the status codes, in order."""
    clients = [
        log_in(base_url, *login) if login else httpx.Client(base_url=base_url, timeout=60)
        for _ in range(count)
    ]
    try:
        calls = [
            posting(client, path, {**form, "csrf_token": csrf_token(client, form_page)})
            for client in clients
        ]
        return [response.status_code for response in in_parallel(calls)]
    finally:
        for client in clients:
            client.close()
