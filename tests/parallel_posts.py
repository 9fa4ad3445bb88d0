"""Overlapping requests for real: one client per request, each with its own session and
CSRF token, all released together by a barrier against a server on a real socket."""

from __future__ import annotations

import re
import threading

import httpx

CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def post_together(
    base_url: str,
    form_page: str,
    path: str,
    form: dict,
    count: int,
    *,
    login: tuple[str, str] | None = None,
) -> list[int]:
    """POST `form` to `path` from `count` clients at once; each first logs in with
    `login` (email, password) when given, then GETs `form_page` for its token. Returns
    the status codes, in no particular order."""
    clients = [httpx.Client(base_url=base_url, timeout=30) for _ in range(count)]
    try:
        if login:
            for client in clients:
                token = CSRF_FIELD.search(client.get("/login").text).group(1)
                data = {"email": login[0], "password": login[1], "csrf_token": token}
                assert client.post("/login", data=data).status_code == 303
        tokens = [CSRF_FIELD.search(c.get(form_page).text).group(1) for c in clients]
        barrier = threading.Barrier(count)
        statuses: list[int] = []
        lock = threading.Lock()

        def post(client: httpx.Client, token: str) -> None:
            barrier.wait()
            response = client.post(path, data={**form, "csrf_token": token})
            with lock:
                statuses.append(response.status_code)

        threads = [
            threading.Thread(target=post, args=pair) for pair in zip(clients, tokens, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return statuses
    finally:
        for client in clients:
            client.close()
