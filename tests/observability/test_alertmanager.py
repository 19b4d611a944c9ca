"""observability/alertmanager/alertmanager.yaml, read with PyYAML and checked for structure.

amtool (Alertmanager's own `amtool check-config`) is not installed here and ships in no
Python package, so these checks stand in for it: every route leads to a defined receiver,
the on-call e-mail is complete and reads its password from a file, and the inhibit rules
name alerts that exist.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.observability import checks, rules

CONFIG = checks.load_yaml(checks.ALERTMANAGER)
ALERT_NAMES = [rule["alert"] for rule in checks.alerting_rules(rules.load_rules_file())]


def test_the_configuration_is_sound() -> None:
    assert checks.alertmanager_problems(CONFIG, alert_names=ALERT_NAMES) == []


def test_alerts_reach_the_oncall_team_by_email() -> None:
    receiver = next(r for r in CONFIG["receivers"] if r["name"] == CONFIG["route"]["receiver"])
    (email,) = receiver["email_configs"]
    assert email["to"]
    assert email["send_resolved"] is True
    assert email["auth_password_file"].startswith("/etc/alertmanager/secrets/")


def test_critical_alerts_repeat_sooner_than_warnings() -> None:
    critical = next(r for r in CONFIG["route"]["routes"] if 'severity = "critical"' in r["matchers"])
    assert _hours(critical["repeat_interval"]) < _hours(CONFIG["route"]["repeat_interval"])


def _hours(duration: str) -> float:
    units = {"m": 1 / 60, "h": 1.0, "d": 24.0}
    return float(duration[:-1]) * units[duration[-1]]


# --- negative controls ---------------------------------------------------------------------------


def _unknown_receiver(c: dict[str, Any]) -> None:
    c["route"]["routes"][0]["receiver"] = "nobody"


def _inline_password(c: dict[str, Any]) -> None:
    email = c["receivers"][0]["email_configs"][0]
    del email["auth_password_file"]
    email["auth_password"] = "hunter2"


def _global_inline_password(c: dict[str, Any]) -> None:
    c["global"] = {"smtp_auth_password": "hunter2"}


def _no_smarthost_port(c: dict[str, Any]) -> None:
    c["receivers"][0]["email_configs"][0]["smarthost"] = "smtp.example.com"


def _no_to(c: dict[str, Any]) -> None:
    del c["receivers"][0]["email_configs"][0]["to"]


def _no_tls(c: dict[str, Any]) -> None:
    c["receivers"][0]["email_configs"][0]["require_tls"] = False


def _unused_receiver(c: dict[str, Any]) -> None:
    c["receivers"].append({"name": "spare", "email_configs": []})


def _unknown_inhibited_alert(c: dict[str, Any]) -> None:
    c["inhibit_rules"][0]["target_matchers"] = ['alertname = "TodoNoSuchAlert"']


def _bad_matcher(c: dict[str, Any]) -> None:
    c["route"]["routes"][0]["matchers"] = ["severity: critical"]


def _no_route(c: dict[str, Any]) -> None:
    del c["route"]


@pytest.mark.parametrize(
    ("break_it", "complaint"),
    [
        (_unknown_receiver, "receiver 'nobody', which is not defined"),
        (_inline_password, "auth_password is inline"),
        (_global_inline_password, "smtp_auth_password is inline"),
        (_no_smarthost_port, "is not host:port"),
        (_no_to, "without to"),
        (_no_tls, "does not require TLS"),
        (_unused_receiver, "no route uses it"),
        (_unknown_inhibited_alert, "TodoNoSuchAlert"),
        (_bad_matcher, "is not label op"),
        (_no_route, "no top-level route"),
    ],
)
def test_a_broken_configuration_is_reported(
    break_it: Callable[[dict[str, Any]], None], complaint: str
) -> None:
    broken = copy.deepcopy(CONFIG)
    break_it(broken)
    found = checks.alertmanager_problems(broken, alert_names=ALERT_NAMES)
    assert any(complaint in problem for problem in found), found
