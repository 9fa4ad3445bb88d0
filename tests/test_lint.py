"""The tree passes ruff (the rules and line length in pyproject.toml), migrations too, and
keeps its architecture: the import contracts, and services that never touch the request."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=" ".join)
def test_ruff_is_clean(command):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is in the test dependencies"
    result = subprocess.run([ruff, *command], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


def test_the_architecture_contracts_hold():
    """.importlinter: views → services → models, services blind to the web, no cycles."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is in the test dependencies"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
    assert "0 broken" in result.stdout


# What a service may not touch: the request, the logged-in member and page rendering
# belong to the views (import-linter sees modules, not these names).
WEB_ONLY = {"request", "render_template", "render_template_string", "session", "g", "current_user"}


def _web_names_used(source: str) -> set[str]:
    """Names from WEB_ONLY a module imports from flask or flask_login, or reaches as
    `flask.<name>`."""
    used = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in ("flask", "flask_login"):
            used |= {alias.name for alias in node.names} & WEB_ONLY
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "flask"
            and node.attr in WEB_ONLY
        ):
            used.add(node.attr)
    return used


def test_the_check_sees_a_request_import():
    assert _web_names_used("from flask import current_app, request\n") == {"request"}
    assert _web_names_used("import flask\nflask.render_template('x')\n") == {"render_template"}
    assert _web_names_used("from flask_login import current_user\n") == {"current_user"}
    assert _web_names_used("from flask import current_app\n") == set()


def test_no_service_touches_the_request_or_renders_a_page():
    offenders = {
        path.name: sorted(used)
        for path in sorted((ROOT / "linkmsg" / "services").glob("*.py"))
        if (used := _web_names_used(path.read_text()))
    }
    assert offenders == {}


def _bare_waits(source: str) -> list[int]:
    """Lines where `wait_for_function` is given an expression rather than a function."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "wait_for_function"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and not node.args[0].value.lstrip().startswith(("() =>", "function"))
        ):
            lines.append(node.lineno)
    return lines


def test_browser_waits_poll_a_function():
    """Playwright evaluates an expression given to `wait_for_function` again on every
    poll, with `eval`, which the app's Content-Security-Policy refuses: a wait that is not
    true at once then fails with an EvalError. A function is evaluated once and called."""
    assert _bare_waits('page.wait_for_function("window.htmx !== undefined")') == [1]
    assert _bare_waits('page.wait_for_function("() => window.htmx")') == []
    found = {
        f"{path.relative_to(ROOT)}:{line}"
        for path in (ROOT / "tests" / "e2e").glob("*.py")
        for line in _bare_waits(path.read_text())
    }
    assert not found, sorted(found)
