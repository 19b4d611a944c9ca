"""The README's walkthroughs, run as a newcomer would type them, against ``todo-operator demo``.

A command block runs when the line before it (blank lines aside) is
``<!-- walkthrough -->`` and the block is fenced as ```sh. The marked blocks
of one ``##`` section run in order in one bash session — as in the terminal a
person types them into, variables carry from one block to the next — with
``-euo pipefail``, from a folder laid out like a clone: the demo's state in
``.demo/`` and ``examples/`` beside it. The shell gets no KUBECONFIG, token
or API address of ours: the README's own ``source .demo/env`` must provide
them. Unmarked blocks (the two make commands, the real-cluster setup) never
run. Afterwards the test checks what the walkthroughs promise — the next
occurrences exist, the reminder e-mails are in ``.demo/mail/`` — then stops
the demo with SIGINT and checks that nothing is left running.
"""

from __future__ import annotations

import email
import email.policy
import pathlib
import subprocess
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import require_tools
from tests.demo_runner import ROOT, Demo, assert_nothing_left, demo_environment, free_port_run

README = ROOT / "README.md"
MARK = "<!-- walkthrough -->"
TOOLS = ("bash", "kubectl", "curl", "jq", "date")
# What the README's walkthroughs create (checked after they ran).
KUBECTL_RECURRING_TASK = "water-plants"
REST_RECURRING_TASK = "pay-rent"
KUBECTL_SECTION = "Walkthrough with kubectl"
REST_SECTION = "Walkthrough with the REST API"


def walkthrough_sections(markdown: str) -> dict[str, list[str]]:
    """The marked ```sh blocks of each ``##`` section, in order; a mark on anything else is an error."""
    sections: dict[str, list[str]] = {}
    lines = markdown.splitlines()
    title = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            title = line.removeprefix("## ").strip()
        elif line.strip() == MARK:
            start = index + 1
            while start < len(lines) and not lines[start].strip():
                start += 1
            if start == len(lines) or lines[start].strip() != "```sh":
                raise ValueError(f"README line {index + 1}: {MARK} must be followed by a ```sh block")
            end = start + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if end == len(lines):
                raise ValueError(f"README line {start + 1}: the ```sh block is not closed")
            sections.setdefault(title, []).append("\n".join(lines[start + 1 : end]))
            index = end
        index += 1
    return sections


def test_only_marked_sh_blocks_are_taken_section_by_section() -> None:
    markdown = "\n".join(
        [
            "## Setup",
            "```sh",
            "make demo",
            "```",
            "## Walk",
            MARK,
            "",
            "```sh",
            "echo one",
            "```",
            "text",
            MARK,
            "```sh",
            "echo two",
            "echo three",
            "```",
            "```sh",
            "echo unmarked",
            "```",
        ]
    )
    assert walkthrough_sections(markdown) == {"Walk": ["echo one", "echo two\necho three"]}


@pytest.mark.parametrize(
    "markdown",
    [
        pytest.param(f"{MARK}\n```yaml\na: 1\n```", id="not-sh"),
        pytest.param(f"{MARK}\ntext\n```sh\necho\n```", id="not-right-after"),
        pytest.param(f"{MARK}\n```sh\necho", id="unclosed"),
        pytest.param(MARK, id="nothing-after"),
    ],
)
def test_a_mark_that_marks_no_sh_block_is_an_error(markdown: str) -> None:
    with pytest.raises(ValueError, match="README line"):
        walkthrough_sections(markdown)


def test_the_readme_marks_both_walkthroughs_and_nothing_that_needs_a_cluster() -> None:
    sections = walkthrough_sections(README.read_text())
    assert set(sections) == {KUBECTL_SECTION, REST_SECTION}
    for title, blocks in sections.items():
        assert blocks[0].startswith("source .demo/env"), f"{title} must start from the demo's env file"
    marked = "\n".join(block for blocks in sections.values() for block in blocks)
    for not_for_the_demo in ("make ", "todo-operator run", "kubectl apply -f crds/", "migrate up"):
        assert not_for_the_demo not in marked


def _mail(folder: pathlib.Path) -> list[Any]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


@pytest.mark.integration  # starts `todo-operator demo` itself: PostgreSQL, the emulator, the operator
def test_the_readme_walkthroughs_work_against_the_demo(tmp_path: pathlib.Path) -> None:
    require_tools(*TOOLS)
    sections = walkthrough_sections(README.read_text())
    clone = tmp_path / "clone"  # where a newcomer stands: .demo/ and examples/ side by side
    clone.mkdir()
    (clone / "examples").symlink_to(ROOT / "examples")
    state = clone / ".demo"
    # HOME: kubectl keeps a discovery cache there, which must not come from (or go to) the real one.
    shell_env = demo_environment(HOME=str(tmp_path))

    with Demo(state_dir=state, port_base=free_port_run(), cwd=clone) as demo:
        for title in (KUBECTL_SECTION, REST_SECTION):
            script = "\n".join(sections[title])
            run = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=clone,
                env=shell_env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert run.returncode == 0, (
                f"README section {title!r} failed ({run.returncode}):\n--- stdout\n{run.stdout}\n"
                f"--- stderr\n{run.stderr}\n--- demo\n{demo.output[-5000:]}"
            )

        # The next occurrences exist: made with kubectl ...
        kube = httpx.Client(base_url=demo.api_url + "/apis/todo.dev/v1alpha1/namespaces/default", timeout=10)
        with kube:
            status = kube.get(f"/recurringtasks/{KUBECTL_RECURRING_TASK}").json()["status"]
            assert status["occurrences"] == 3  # the second one skipped
            current = kube.get(f"/tasks/{status['currentTask']}").json()
            assert current["status"]["phase"] == "Open"
            assert current["status"]["occurrence"] == 3
        # ... and with curl, as the demo user.
        env = demo.env_file()
        rest = httpx.get(
            f"{env['API_URL']}/recurring-tasks/{REST_RECURRING_TASK}/occurrences",
            headers={"Authorization": f"Bearer {env['TOKEN']}"},
            timeout=10,
        )
        occurrences = rest.json()
        recorded = [*occurrences["past"], *occurrences["current"]]
        assert [(item["occurrence"], item["phase"]) for item in recorded] == [
            (1, "Completed"),
            (2, "Skipped"),
            (3, "Open"),
        ], rest.text

        # The reminder e-mails arrived as files, and the demo said so.
        mail = _mail(state / "mail")
        subjects = sorted(str(message["Subject"]) for message in mail)
        assert len(mail) == 2, subjects
        assert subjects[0].startswith("Reminder: Pay the rent"), subjects
        assert subjects[1].startswith("Reminder: Water the plants"), subjects
        assert {str(message["To"]) for message in mail} == {"alice@example.com"}
        assert demo.output.count("e-mail      to alice@example.com: Reminder: ") == 2, demo.output

    assert demo.returncode == 0, demo.output
    assert_nothing_left(state_dir=state, port_base=demo.port_base)
