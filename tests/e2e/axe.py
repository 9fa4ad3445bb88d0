"""Run axe-core (vendored in tests/e2e/vendor/, see its README) on the pages a browser shows.

axe runs in an isolated world of the page, as a browser extension's script would: it sees
the page's DOM and styles but is not one of the page's scripts, so the page's own
Content-Security-Policy (scripts from 'self' only) stays in force, untouched, and with
JavaScript off the page's own scripts still never run. A page with JavaScript off fires no
timers, not even an isolated world's; axe waits only on zero-delay ones, which a small
shim turns into microtasks there (its longer timers only guard against frames that never
answer, and our pages have none).
"""

from __future__ import annotations

import json
from pathlib import Path

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")

_TIMER_SHIM = """
(() => {
  let next = 1;
  const cancelled = new Set();
  globalThis.setTimeout = (fn, ms, ...args) => {
    const id = next++;
    if (!ms || ms <= 1) queueMicrotask(() => { if (!cancelled.has(id)) fn(...args); });
    return id;
  };
  globalThis.clearTimeout = (id) => { cancelled.add(id); };
})();
"""

_RUN = """
axe.run(document, {resultTypes: ["violations"]}).then((results) => results.violations.map((v) => ({
  id: v.id,
  impact: v.impact,
  help: v.help,
  helpUrl: v.helpUrl,
  nodes: v.nodes.map((n) => ({target: n.target, html: n.html, summary: n.failureSummary})),
})))
"""

_OPEN_DETAILS = "document.querySelectorAll('details').forEach((d) => { d.open = true; }); 0"

FAILING_IMPACTS = ("serious", "critical")


def _evaluate(cdp, expression: str, context_id: int, *, await_promise: bool = False):
    answer = cdp.send(
        "Runtime.evaluate",
        {
            "expression": expression,
            "contextId": context_id,
            "awaitPromise": await_promise,
            "returnByValue": True,
            "timeout": 20_000,
        },
    )
    if "exceptionDetails" in answer:
        raise RuntimeError(f"axe failed: {json.dumps(answer['exceptionDetails'])[:2000]}")
    return answer["result"].get("value")


class Axe:
    """A page that carries axe-core: every document it loads gets axe in an isolated world
    (from the document's start, so no waiting on a script tag), ready to run on demand."""

    WORLD = "axe-core"

    def __init__(self, page, *, js: bool):
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self._worlds: dict[str, int] = {}  # frame id -> axe's execution context there
        self.cdp.on("Runtime.executionContextCreated", self._created)
        self.cdp.send("Runtime.enable")
        self.cdp.send("Page.enable")
        source = ("" if js else _TIMER_SHIM) + AXE_SOURCE
        self.cdp.send(
            "Page.addScriptToEvaluateOnNewDocument", {"source": source, "worldName": self.WORLD}
        )

    def _created(self, event) -> None:
        context = event["context"]
        if context["name"] == self.WORLD:
            self._worlds[context["auxData"]["frameId"]] = context["id"]

    def evaluate(self, expression: str):
        """The value of a script expression, evaluated beside axe (works with JavaScript off)."""
        frame_id = self.cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"]
        return _evaluate(self.cdp, expression, self._worlds[frame_id])

    def violations(self, *, open_details: bool = True) -> list[dict]:
        """axe's violations on the page as it is now (every rule axe runs by default).

        With open_details, every <details> (menus, the Labels picker, row actions) is
        opened first, so that what they hold is checked too."""
        if open_details:
            self.evaluate(_OPEN_DETAILS)
        frame_id = self.cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"]
        return _evaluate(self.cdp, _RUN, self._worlds[frame_id], await_promise=True)


def serious(found: list[dict]) -> list[dict]:
    return [v for v in found if v["impact"] in FAILING_IMPACTS]


def report(found: list[dict]) -> str:
    """The violations, each with the elements it was found on, for a failure message."""
    lines = []
    for v in found:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            lines.append(f"       {node['html'][:300]}")
            for line in (node["summary"] or "").splitlines():
                lines.append(f"       {line}")
    return "\n".join(lines)
