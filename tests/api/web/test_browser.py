"""The page in a real headless Chromium, against the whole system, as its users meet it.

Each flow is driven through the page (Playwright), and what it shows is
checked against the system itself: the preview against the engine's REST
preview, completions against the operator's next occurrence, a kubectl edit
arriving live. Every view is scanned by axe-core (0 serious or critical
violations), fits 320 px, and is saved as a screenshot for the README.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx2 as httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.api.web.conftest import ALICE, BOB, SCREENSHOTS, Console, WebStack, sign_in

NewPage = Callable[..., Page]
_axe = Axe()


def check_view(page: Page, name: str) -> None:
    """axe-core finds nothing serious; the view fits 320 px; its screenshot goes to docs/images/web."""
    results = _axe.run(page)
    grave = [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']]}"
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert grave == [], f"accessibility violations on {name}: {grave}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    width = page.viewport_size["width"] if page.viewport_size else 1280
    page.set_viewport_size({"width": 320, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth")
    wide = (
        page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 320)"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)"
        )
        if overflow > 320
        else []
    )
    page.set_viewport_size({"width": width, "height": 900})
    assert overflow <= 320, f"{name} is {overflow} px wide at a 320 px viewport: {wide}"


def bearer(stack: WebStack, user: str) -> httpx.Client:
    token = stack.issuer.state.access_token(user)
    return httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def parse(instant: str | None) -> datetime:
    assert instant is not None
    return datetime.fromisoformat(instant)


def test_sign_in_with_the_issuer_shows_my_tasks(web_stack: WebStack, new_page: NewPage) -> None:
    page = new_page()
    page.goto(web_stack.url + "/")
    expect(page).to_have_url(web_stack.url + "/sign-in?return_to=%2F")
    check_view(page, "sign-in")
    sign_in(page, web_stack, ALICE)
    expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    expect(page.get_by_text(ALICE)).to_be_visible()
    # The page kept no token: the issuer was asked once, with the PKCE verifier.
    request = web_stack.issuer.state.token_requests[-1]
    assert request["grant_type"] == "authorization_code"
    assert len(request["code_verifier"]) >= 43


def test_a_recurring_task_from_the_simple_form_previews_the_engines_dates(
    web_stack: WebStack, new_page: NewPage
) -> None:
    page = new_page(zone="America/New_York")
    sign_in(page, web_stack, ALICE, to="/series/new")
    page.get_by_label("Title").fill("Team retro")
    page.get_by_label("Every").fill("2")
    page.get_by_label("Unit").select_option("monthly")
    page.get_by_label("The", exact=True).check()
    page.get_by_label("Which one").select_option("-1")
    page.get_by_label("Weekday").select_option("FR")
    page.get_by_label("Starts (wall-clock time in the series' time zone)").fill("2027-01-01T16:30")
    page.get_by_role("combobox", name="Time zone").fill("Europe/Berlin")
    expect(page.locator("#preview-rule")).to_have_text("FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR in Europe/Berlin")
    shown = [time.get_attribute("datetime") for time in page.locator("#preview time").all()]
    schedule = {
        "rrule": "FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR",
        "start": "2027-01-01T16:30",
        "timeZone": "Europe/Berlin",
    }
    with bearer(web_stack, ALICE) as api:
        engine = api.post("/api/v1/schedules/preview", json={"schedule": schedule, "count": 10}).json()
    assert [parse(instant) for instant in shown] == [parse(instant) for instant in engine["occurrences"]]
    # In the reader's zone (New York), with Berlin's wall time beside it.
    expect(page.locator("#preview li").first).to_contain_text("(")
    check_view(page, "recurring-form")
    page.get_by_role("button", name="Add recurring task").click()
    expect(page.get_by_role("heading", name="Team retro")).to_be_visible()
    expect(page.get_by_role("link", name="Occurrence 1")).to_be_visible()  # made by the operator, shown live
    upcoming = page.locator(".upcoming time").first.get_attribute("datetime")
    assert parse(upcoming) == parse(engine["occurrences"][1])


def test_a_refused_rule_is_shown_at_its_field(web_stack: WebStack, new_page: NewPage) -> None:
    page = new_page()
    sign_in(page, web_stack, ALICE, to="/series/new")
    page.get_by_label("Title").fill("Too often")
    page.get_by_label("Advanced (RRULE)").check()
    page.get_by_label("RRULE (RFC 5545), such as FREQ=MONTHLY;BYDAY=-1FR").fill("FREQ=MINUTELY;INTERVAL=1")
    page.get_by_label("Starts (wall-clock time in the series' time zone)").fill("2027-01-01T09:00")
    error = page.locator('[data-error-for="rrule"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text("5 minutes")
    expect(page.locator("#rrule")).to_have_attribute("aria-invalid", "true")
    page.get_by_role(
        "button", name="Add recurring task"
    ).click()  # without the script's help: the server says so too
    expect(page.locator('[data-error-for="rrule"]')).to_contain_text("5 minutes")


def test_completing_an_occurrence_shows_the_next(web_stack: WebStack, new_page: NewPage) -> None:
    page = new_page()
    sign_in(page, web_stack, ALICE, to="/series/new")
    page.get_by_label("Title").fill("Water the ficus")
    page.get_by_label("Unit").select_option("daily")
    page.get_by_label("Starts (wall-clock time in the series' time zone)").fill("2026-01-01T08:00")
    page.get_by_role("combobox", name="Time zone").fill("UTC")
    page.get_by_role("button", name="Add recurring task").click()
    series_url = page.url
    # The operator makes the first occurrence; the page learns of it live.
    occurrence = page.get_by_role("link", name="Occurrence 1")
    expect(occurrence).to_be_visible()
    occurrence.click()
    expect(page.locator(".badge.soon")).to_have_text("Due soon")  # the next 08:00 UTC, within a day
    check_view(page, "task")
    page.get_by_role("button", name="Complete").click()
    expect(page.locator(".badge.completed")).to_have_text("Completed")
    page.goto(series_url)
    expect(page.get_by_role("link", name="Occurrence 2")).to_be_visible()
    expect(page.locator(".history")).to_contain_text("Completed")
    check_view(page, "series")


def test_a_kubectl_edit_appears_live(web_stack: WebStack, new_page: NewPage) -> None:
    page = new_page()
    sign_in(page, web_stack, ALICE, to="/tasks/new")
    page.get_by_label("Title").fill("Renew the passport")
    page.get_by_role("button", name="Add task").click()
    page.goto(web_stack.url + "/?sort=-created")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    cluster_name = next(
        item["metadata"]["name"]
        for item in json.loads(web_stack.kubectl("get", "tasks", "-o", "json"))["items"]
        if item["spec"]["title"] == "Renew the passport"
    )
    web_stack.kubectl(
        "patch", "task", cluster_name, "--type", "merge", "-p", '{"spec":{"title":"Renew both passports"}}'
    )
    expect(page.get_by_role("link", name="Renew both passports")).to_be_visible(timeout=10_000)
    check_view(page, "my-tasks")


def test_reminder_settings_and_an_overdue_task(web_stack: WebStack, new_page: NewPage) -> None:
    page = new_page()
    sign_in(page, web_stack, ALICE, to="/tasks/new")
    page.get_by_label("Title").fill("File the tax return")
    page.get_by_label("Priority").select_option("urgent")
    page.get_by_label("Due (your time)").fill("2026-01-31T23:00")
    page.get_by_label("1 day before").check()
    page.get_by_label("1 week before").check()
    page.get_by_label("Custom, before the due time (such as 30m, 2h or 3d)").fill("2h")
    check_view(page, "task-form")
    page.get_by_role("button", name="Add task").click()
    expect(page.locator(".badge.overdue")).to_contain_text("Overdue")
    reminders = page.locator("h2:has-text('Reminders') + ul li")
    expect(reminders).to_have_text(
        ["1d before the due time", "7d before the due time", "2h before the due time"]
    )
    # The due time was read in the browser's zone (Berlin, UTC+1 in January).
    due = page.locator(".facts time").first.get_attribute("datetime")
    assert parse(due) == datetime(2026, 1, 31, 22, tzinfo=UTC)
    page.goto(web_stack.url + "/?state=overdue")
    row = page.locator("li.task.overdue", has_text="File the tax return")
    expect(row.locator(".badge.overdue svg")).to_have_count(1)
    color = row.locator(".badge.overdue").evaluate("element => getComputedStyle(element).color")
    assert color == "rgb(179, 38, 30)"  # --red


def test_keyboard_alone_adds_a_task(web_stack: WebStack, new_page: NewPage) -> None:
    page = new_page()
    sign_in(page, web_stack, ALICE)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    focus_ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focus_ring == "solid"
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "New task":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(web_stack.url + "/tasks/new")
    page.keyboard.press("Tab")
    while page.evaluate("document.activeElement.id") != "title":
        page.keyboard.press("Tab")
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")  # submits the form
    expect(page.get_by_role("heading", name="Typed without a mouse")).to_be_visible()


def test_another_users_objects_are_never_shown(
    web_stack: WebStack, new_page: NewPage, console: Console
) -> None:
    console.expect("404 (Not Found)")
    with bearer(web_stack, ALICE) as alice:
        created = alice.post("/api/v1/tasks", json={"title": "Alice's secret"}).json()
    page = new_page()
    sign_in(page, web_stack, BOB)
    page.goto(web_stack.url + "/?state=all")
    expect(page.get_by_text("Alice's secret")).to_have_count(0)
    answer = page.goto(web_stack.url + f"/tasks/{created['name']}")
    assert answer is not None
    assert answer.status == 404
    page.goto(web_stack.url + "/?state=all&q=secret")
    expect(page.locator(".tasks li")).to_have_count(0)


@pytest.mark.parametrize("how", ["without a token", "with another session's token", "from another origin"])
def test_a_change_without_this_sessions_csrf_token_is_refused(
    web_stack: WebStack, new_page: NewPage, how: str
) -> None:
    page = new_page()
    sign_in(page, web_stack, ALICE, to="/tasks/new")
    page.get_by_label("Title").fill(f"Guarded {how}")
    page.get_by_role("button", name="Add task").click()
    task_path = page.url.removeprefix(web_stack.url)
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    other = new_page()
    sign_in(other, web_stack, ALICE)
    tokens = {
        "without a token": "",
        "with another session's token": other.locator("input[name=csrf_token]").first.get_attribute("value"),
        "from another origin": page.locator("input[name=csrf_token]").first.get_attribute("value"),
    }
    headers = {"Origin": "https://evil.example"} if how == "from another origin" else {}
    with httpx.Client(base_url=web_stack.url, cookies=cookies, timeout=20) as browser_like:
        answer = browser_like.post(
            f"{task_path}/complete", data={"csrf_token": tokens[how] or ""}, headers=headers
        )
    assert answer.status_code == 403
    with bearer(web_stack, ALICE) as api:
        assert api.get(f"/api/v1{task_path}").json()["completed"] is False


def test_signing_in_never_keeps_a_planted_session(web_stack: WebStack, new_page: NewPage) -> None:
    attacker = new_page()
    sign_in(attacker, web_stack, BOB)
    planted = next(c for c in attacker.context.cookies() if c["name"] == "todo_session")
    victim = new_page()
    victim.context.add_cookies([{**planted}])
    victim.goto(web_stack.url + "/")
    victim.get_by_role("button", name="Sign out").wait_for()  # the planted session works, as Bob's
    victim.context.clear_cookies()
    victim.context.add_cookies([{**planted, "value": "chosen-by-the-attacker"}])
    sign_in(victim, web_stack, ALICE)
    session = next(c for c in victim.context.cookies() if c["name"] == "todo_session")
    assert session["value"] not in (planted["value"], "chosen-by-the-attacker")
    assert session["httpOnly"]
    assert session["sameSite"] == "Lax"
    # The attacker's cookie opens nothing after the victim signed in with it in place, nor after sign-out.
    with httpx.Client(base_url=web_stack.url, cookies={"todo_session": "chosen-by-the-attacker"}) as forged:
        assert forged.get("/").status_code == 303
    victim.get_by_role("button", name="Sign out").click()
    expect(victim.get_by_role("heading", name="Sign in")).to_be_visible()
    with httpx.Client(base_url=web_stack.url, cookies={"todo_session": session["value"]}) as stolen:
        assert stolen.get("/").status_code == 303


def test_a_skip_and_the_series_history(web_stack: WebStack, new_page: NewPage) -> None:
    page = new_page()
    sign_in(page, web_stack, ALICE, to="/series/new")
    page.get_by_label("Title").fill("Stand-up notes")
    page.get_by_label("Unit").select_option("weekly")
    page.get_by_label("Monday").check()
    page.get_by_label("Starts (wall-clock time in the series' time zone)").fill("2026-11-02T09:00")
    page.get_by_role("button", name="Add recurring task").click()
    page.get_by_role("link", name="Occurrence 1").click()
    page.get_by_role("button", name="Skip this occurrence").click()
    expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    page.get_by_role("link", name="Stand-up notes").first.click()
    expect(page.locator(".history")).to_contain_text("Skipped")
    page.locator(".facts a").first.click()  # to the series
    page.get_by_role("button", name="Suspend").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.goto(web_stack.url + "/series")
    check_view(page, "series-list")
