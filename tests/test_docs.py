"""The README keeps up with the code: every setting and every data-testid hook is documented."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def test_every_environment_setting_is_in_the_configuration_table():
    source = (ROOT / "linkmsg" / "config.py").read_text()
    names = set(
        re.findall(
            r"""(?:environ\.get|_env_int|_env_float|_env_bool)\(\s*["']([A-Z0-9_]+)["']""", source
        )
    )
    assert len(names) > 20
    table = section("Configuration")
    missing = sorted(name for name in names if f"`{name}`" not in table)
    assert missing == [], f"settings missing from the README's Configuration table: {missing}"


def test_every_data_testid_in_the_templates_is_in_the_html_contract():
    contract = section("HTML contract for testers")
    documented = set(re.findall(r"`([a-z0-9-]+)`", contract))
    documented |= set(re.findall(r'data-testid="([a-z0-9-]+)"', contract))
    used = set()
    for template in (ROOT / "linkmsg" / "templates").rglob("*.html"):
        used |= set(re.findall(r'data-testid="([a-z0-9-]+)"', template.read_text()))
    # Hooks built from a name: filter-<name>, template-<name>.
    used = {hook for hook in used if "{" not in hook}
    missing = sorted(used - documented)
    assert missing == [], f"data-testid hooks missing from the README's HTML contract: {missing}"
