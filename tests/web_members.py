"""Members driving a real server over real sockets: their own cookies, real CSRF tokens
from the pages, forms as the pages render them. For tests whose requests overlap."""

from __future__ import annotations

import threading

import httpx
from bs4 import BeautifulSoup

from .factories import MemberRef


class WebMember:
    """One member's browser, over HTTP (httpx), against a server on a real port."""

    def __init__(self, base_url: str, member: MemberRef):
        self.member = member
        self.http = httpx.Client(base_url=base_url, timeout=60, follow_redirects=False)

    def page(self, path: str) -> BeautifulSoup:
        response = self.http.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return BeautifulSoup(response.text, "lxml")

    def form(self, path: str, selector: str = "form[method=post]") -> dict[str, str]:
        """The hidden fields of the form on a page (CSRF token, idempotency key)."""
        form = self.page(path).select_one(selector)
        assert form is not None, (path, selector)
        return {
            field["name"]: field.get("value", "")
            for field in form.select("input[type=hidden][name]")
        }

    def token(self) -> str:
        return self.page("/").find("meta", attrs={"name": "csrf-token"})["content"]

    def login(self) -> WebMember:
        response = self.http.post(
            "/login",
            data={
                "csrf_token": self.token(),
                "email": self.member.email,
                "password": self.member.password,
            },
        )
        assert response.status_code == 303, response.text[:300]
        return self

    def post(self, path: str, data: dict) -> httpx.Response:
        return self.http.post(path, data=data)

    @property
    def session_cookie(self) -> str:
        return self.http.cookies["session"]

    def close(self) -> None:
        self.http.close()


def together(calls) -> list:
    """Run the calls in threads released at once by a barrier; their results (or the
    exceptions they raised), in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except Exception as error:  # reported to the test, which decides
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
