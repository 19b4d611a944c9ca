"""F26: the whole local stack killed (SIGKILL) and started again with its state kept.

The demo's state lives in three places: PostgreSQL (on disk), the e-mails
(files) and the emulated cluster's objects, in the emulator's memory and in
its write-ahead journal (``apiserver/journal.py``). After a crash the objects
must come back exactly as the emulator last served them, never older than
what PostgreSQL remembers; or the start refuses, saying why.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import httpx2 as httpx
import pytest

import kube_emulator as apiserver
from kube_emulator import journal
from tests import ROOT
from tests.demo_runner import (
    Demo,
    assert_nothing_left,
    demo_environment,
    free_port_run,
    todo_operator_command,
)
from tests.packages.kube_emulator.conftest import WIDGET_CRD, WIDGETS, Api, widget

Json = dict[str, Any]
TODO = "/apis/todo.dev/v1alpha1/namespaces/default"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
# The CRDs as shipped (generated from the models; a test holds crds/ and the models together).
OUR_CRDS = [argument for file in sorted((ROOT / "crds").glob("*.yaml")) for argument in ("--crd", str(file))]
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


def weekly_review() -> Json:
    return {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "RecurringTask",
        "metadata": {"name": "weekly-review"},
        "spec": {
            "schedule": {"rrule": "FREQ=WEEKLY;BYDAY=FR", "start": "2026-12-04T16:00:00", "timeZone": "UTC"},
            "taskTemplate": {"title": "Weekly review", "owner": "alice@example.com"},
        },
    }


def stored(server: apiserver.RunningServer) -> dict[tuple[str, str], dict[tuple[str, str], Json]]:
    """Every object the emulator holds, by storage key, then (namespace, name)."""
    found: dict[tuple[str, str], dict[tuple[str, str], Json]] = {}
    for storage_key, obj in server.cluster.store.everything():
        found.setdefault(storage_key, {})[(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = (
            obj
        )
    return found


# --- the journal: every write the emulator answered, and nothing else --------------------------------


async def make_history(api: Api) -> None:
    """Writes of every sort: create, update, status, finalizers, deletion pending, garbage collection."""

    async def ok(call: Any) -> Json:
        status, body = await call
        assert status in (200, 201, 202), body
        return dict(body)

    for name in ("keep", "owner", "pending"):
        await ok(api.post(WIDGETS, widget(name)))
    await ok(api.patch(f"{WIDGETS}/keep", {"spec": {"title": "Edited"}}))
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    await ok(api.patch(f"{WIDGETS}/keep/status", ready))
    await ok(api.patch(f"{WIDGETS}/pending", {"metadata": {"finalizers": ["example.dev/hold"]}}))
    await ok(api.delete(f"{WIDGETS}/pending"))  # stays, with a deletionTimestamp
    owner = await ok(api.get(f"{WIDGETS}/owner"))
    dependent = widget("dependent")
    dependent["metadata"]["ownerReferences"] = [
        {"apiVersion": "example.dev/v1", "kind": "Widget", "name": "owner", "uid": owner["metadata"]["uid"]}
    ]
    await ok(api.post(WIDGETS, dependent))
    await ok(api.delete(f"{WIDGETS}/owner"))  # takes its dependent with it
    await ok(api.post("/api/v1/namespaces", {"metadata": {"name": "team"}}))
    await ok(api.post("/api/v1/namespaces/team/configmaps", {"metadata": {"name": "settings"}}))
    assert (await api.get(f"{WIDGETS}/dependent"))[0] == 404
    assert (await ok(api.get(f"{WIDGETS}/pending")))["metadata"]["deletionTimestamp"]


@pytest.mark.parametrize(
    "compact_after", [1, 3, 10_000], ids=["base-every-write", "base-every-3", "no-new-base"]
)
async def test_the_journal_holds_exactly_what_the_emulator_served(
    tmp_path: pathlib.Path, compact_after: int
) -> None:
    """Read while the emulator runs: what a SIGKILL at this moment would leave."""
    path = tmp_path / "cluster.journal"
    kept = journal.Journal.open(path, compact_after=compact_after)
    async with apiserver.serve(crds=[WIDGET_CRD], journal=kept) as server, aiohttp.ClientSession() as session:
        await make_history(Api(session, server))
        saved = journal.read(path)
        assert saved.revision == server.cluster.store.revision
        assert saved.objects == stored(server)
        assert not saved.torn_tail
    assert not (tmp_path / "cluster.journal.tmp").exists()


async def test_a_new_emulator_resumes_the_journal_exactly_and_counts_on(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cluster.journal"
    async with apiserver.serve(crds=[WIDGET_CRD], journal=journal.Journal.open(path)) as first:
        async with aiohttp.ClientSession() as session:
            await make_history(Api(session, first))
        before, revision = stored(first), first.cluster.store.revision
    resumed = journal.Journal.open(path)
    async with apiserver.serve(crds=[WIDGET_CRD], journal=resumed) as second:
        # uids, resourceVersions, status, finalizers, deletionTimestamp; the CRDs are the new emulator's own.
        after = stored(second)
        crds = after.pop(CRDS)
        assert after == {key: objects for key, objects in before.items() if key != CRDS}
        assert [crd["spec"] for crd in crds.values()] == [WIDGET_CRD["spec"]]
        assert resumed.restored is not None
        assert resumed.restored.count == len(list(second.cluster.store.everything())) - 4  # CRD, namespaces
        async with aiohttp.ClientSession() as session:
            api = Api(session, second)
            _, created = await api.post(WIDGETS, widget("after"))
            assert int(created["metadata"]["resourceVersion"]) == revision + 1
            # A watch resuming from before the restart relists, as after etcd compaction.
            params = {"watch": "true", "resourceVersion": "1", "timeoutSeconds": "1"}
            async with session.get(second.url + WIDGETS, params=params) as response:
                events = [json.loads(line) for line in (await response.read()).splitlines() if line.strip()]
            assert events[0]["type"] == "ERROR"
            assert events[0]["object"]["code"] == 410


async def journal_with_writes(path: pathlib.Path) -> bytes:
    kept = journal.Journal.open(path)
    async with apiserver.serve(crds=[WIDGET_CRD], journal=kept) as server, aiohttp.ClientSession() as session:
        await make_history(Api(session, server))
    return path.read_bytes()  # noqa: ASYNC240  # a test's small file, nothing else runs in the loop


async def test_a_write_cut_short_by_the_crash_is_dropped(tmp_path: pathlib.Path) -> None:
    """The last line without its newline: the emulator was killed inside write(2), before it answered."""
    path = tmp_path / "cluster.journal"
    whole = await journal_with_writes(path)
    before = journal.read(path)
    path.write_bytes(whole + b'{"revision":' + str(before.revision + 1).encode() + b',"group":"","plu')
    assert journal.read(path) == dataclasses.replace(before, torn_tail=True)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda lines: [*lines[:2], b"{not json", *lines[3:]], "line 3: not JSON"),
        (lambda lines: [*lines[:2], *lines[3:]], r"line 3: revision \d+ follows \d+ \(a write is missing\)"),
        (lambda lines: [b'{"format":"something else"}', *lines[1:]], "line 1: not a todo-operator"),
        (lambda lines: [], "no complete entry"),
    ],
    ids=["garbled", "write-missing", "not-a-journal", "empty"],
)
async def test_a_journal_that_does_not_read_back_whole_is_refused_naming_the_line(
    tmp_path: pathlib.Path, damage: Callable[[list[bytes]], list[bytes]], reason: str
) -> None:
    path = tmp_path / "cluster.journal"
    lines = (await journal_with_writes(path)).split(b"\n")[:-1]
    assert len(lines) > 5
    path.write_bytes(b"".join(line + b"\n" for line in damage(lines)))
    with pytest.raises(journal.Untrusted, match=reason):
        journal.Journal.open(path)


# --- a real SIGKILL: the emulator alone, then the whole demo ----------------------------------------


class EmulatorProcess:
    """``python -m kube_emulator --crd ... --journal FILE`` (what the demo runs, in a process)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.log = path.with_name("emulator.log")
        with self.log.open("a") as log:  # not a pipe: nobody reads it while the emulator runs
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kube_emulator", *OUR_CRDS, "--journal", str(path)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("serving "), line + self.log.read_text()
        self.url = line.split()[-1]

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=10)


@pytest.fixture
def emulators() -> Iterator[list[EmulatorProcess]]:
    started: list[EmulatorProcess] = []
    yield started
    for emulator in started:
        if emulator.process.poll() is None:
            emulator.kill()


def everything(client: httpx.Client) -> Json:
    """Each list the test wrote to, as served (the lists' resourceVersion included)."""
    paths = [WIDGETS, f"{TODO}/recurringtasks", CONFIGMAPS, "/api/v1/namespaces"]
    return {path: client.get(path).json() for path in paths}


def test_an_emulator_killed_with_sigkill_serves_again_exactly_what_it_served(
    tmp_path: pathlib.Path, emulators: list[EmulatorProcess]
) -> None:
    path = tmp_path / "cluster.journal"
    emulators.append(first := EmulatorProcess(path))
    with httpx.Client(base_url=first.url, timeout=10) as client:
        # A CRD applied while it runs (not one it starts with), and objects of it and of ours.
        assert client.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=WIDGET_CRD
        ).is_success
        assert client.post(WIDGETS, json=widget("w1")).status_code == 201
        assert client.post(f"{TODO}/recurringtasks", json=weekly_review()).status_code == 201
        status = {
            "status": {"phase": "Active", "occurrences": 2, "currentTask": "weekly-review-20261211t1600"}
        }
        assert client.patch(
            f"{TODO}/recurringtasks/weekly-review/status", json=status, headers=MERGE
        ).is_success
        finalizer = {"metadata": {"finalizers": ["todo.dev/cleanup"]}}
        assert client.post(CONFIGMAPS, json={"metadata": {"name": "held"}, "data": {"a": "1"}}).is_success
        assert client.patch(f"{CONFIGMAPS}/held", json=finalizer, headers=MERGE).is_success
        assert client.delete(f"{CONFIGMAPS}/held").status_code == 202  # pending: a finalizer holds it
        assert client.post(CONFIGMAPS, json={"metadata": {"name": "gone"}}).is_success
        assert client.delete(f"{CONFIGMAPS}/gone").is_success
        before = everything(client)
    first.kill()  # no clean stop: nothing is saved on the way out

    emulators.append(second := EmulatorProcess(path))
    with httpx.Client(base_url=second.url, timeout=10) as client:
        assert everything(client) == before
        revision = int(before[WIDGETS]["metadata"]["resourceVersion"])
        created = client.post(WIDGETS, json=widget("w2")).json()
        assert int(created["metadata"]["resourceVersion"]) == revision + 1


def test_an_emulator_refuses_a_damaged_journal_saying_why(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cluster.journal"
    path.write_text("{not json\n")
    result = subprocess.run(
        [sys.executable, "-m", "kube_emulator", "--journal", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"cannot resume: {path}, line 1: not JSON" in result.stderr


def items(api_url: str, plural: str) -> dict[str, Json]:
    response = httpx.get(f"{api_url}{TODO}/{plural}", timeout=10)
    response.raise_for_status()
    return {item["metadata"]["name"]: item for item in response.json()["items"]}


def wait_for_occurrence(api_url: str, name: str, occurrences: int) -> Json:
    """Poll (with a deadline) until the RecurringTask shows ``occurrences`` and its current Task is Open."""
    found: Json = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = items(api_url, "recurringtasks").get(name, {})
        status = found.get("status", {})
        if status.get("occurrences") == occurrences and status.get("currentTask"):
            task = items(api_url, "tasks").get(status["currentTask"], {})
            if task.get("status", {}).get("phase") == "Open":
                return found
        time.sleep(0.1)
    raise AssertionError(f"expected occurrence {occurrences} of {name} open, got {found}")


def essentials(objects: dict[str, Json]) -> dict[str, tuple[str, Json, Json]]:
    """What a restart must not change: the uid (rows point at it), the spec and what the operator recorded."""
    return {
        name: (obj["metadata"]["uid"], obj["spec"], obj.get("status", {})) for name, obj in objects.items()
    }


def test_a_demo_killed_with_sigkill_comes_back_with_every_object_it_served(tmp_path: pathlib.Path) -> None:
    state = tmp_path / "demo"
    port = free_port_run()
    with Demo(state_dir=state, port_base=port, args=["--keep"]) as first:
        created = httpx.post(f"{first.api_url}{TODO}/recurringtasks", json=weekly_review(), timeout=10)
        assert created.status_code == 201, created.text
        current = wait_for_occurrence(first.api_url, "weekly-review", 1)["status"]["currentTask"]
        # Completing the occurrence: PostgreSQL records it and the operator opens the next one.
        completed = httpx.patch(
            f"{first.api_url}{TODO}/tasks/{current}",
            json={"spec": {"completed": True}},
            headers=MERGE,
            timeout=10,
        )
        assert completed.status_code == 200, completed.text
        wait_for_occurrence(first.api_url, "weekly-review", 2)
        before = {plural: items(first.api_url, plural) for plural in ("recurringtasks", "tasks")}
        first.kill()  # no clean stop: nothing is saved on the way out

    with Demo(state_dir=state, port_base=port, args=["--keep"]) as kept:
        after = {plural: items(kept.api_url, plural) for plural in ("recurringtasks", "tasks")}
        for plural in ("recurringtasks", "tasks"):
            assert essentials(after[plural]) == essentials(before[plural]), plural
        # The operator goes on from there: the second occurrence is the open one, the first stays done.
        assert after["recurringtasks"]["weekly-review"]["status"]["occurrences"] == 2
        assert after["tasks"][current]["status"]["phase"] == "Completed"
        # And the REST API lists what the emulator serves: no listed task answers 404.
        env = kept.env_file()
        headers = {"Authorization": f"Bearer {env['TOKEN']}"}
        listed = httpx.get(env["API_URL"] + "/tasks", headers=headers, timeout=10)
        assert listed.status_code == 200, listed.text
        names = [item["name"] for item in listed.json()["items"]]
        assert sorted(names) == sorted(before["tasks"]), listed.text
        for name in names:
            assert httpx.get(f"{env['API_URL']}/tasks/{name}", headers=headers, timeout=10).status_code == 200
    assert kept.returncode == 0, kept.output
    kept_line = re.search(r"^kept        (\d+) object\(s\) and the database", kept.output, re.MULTILINE)
    assert kept_line, kept.output
    assert int(kept_line.group(1)) >= 3  # the RecurringTask, its two Tasks, and Kopf's Events and the like
    assert_nothing_left(state_dir=state, port_base=port)


def _database_without_journal(state: pathlib.Path) -> None:
    (state / "postgres" / "data").mkdir(parents=True)
    (state / "postgres" / "data" / "PG_VERSION").write_text("15\n")


def _journal_without_database(state: pathlib.Path) -> None:
    state.mkdir(parents=True)
    (state / "cluster.journal").write_text('{"format":"todo-operator devstack cluster journal"}\n')


def _older_demo(state: pathlib.Path) -> None:
    _database_without_journal(state)
    (state / "cluster.json").write_text('{"objects": []}')


def _damaged_journal(state: pathlib.Path) -> None:
    _database_without_journal(state)
    (state / "cluster.journal").write_text("{not json\n")


@pytest.mark.parametrize(
    ("make_state", "reason"),
    [
        (_database_without_journal, "the database in .* is kept but the objects' journal .* is missing"),
        (_journal_without_database, "the objects' journal .* is kept but the database is missing"),
        (_older_demo, "kept by an older demo, which saved the objects only when it stopped cleanly"),
        (_damaged_journal, r"cluster.journal, line 1: not JSON"),
    ],
    ids=["database-alone", "journal-alone", "older-demo", "damaged-journal"],
)
def test_keep_refuses_a_state_it_cannot_trust_before_starting_anything(
    tmp_path: pathlib.Path, make_state: Callable[[pathlib.Path], None], reason: str
) -> None:
    state = tmp_path / "demo"
    make_state(state)
    port = free_port_run()
    result = subprocess.run(
        [*todo_operator_command(), "demo", "--keep", "--port-base", str(port), "--state-dir", str(state)],
        env=demo_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert message.startswith("todo-operator demo: cannot keep the state: "), message
    assert re.search(reason, message), message
    assert message.endswith(
        "to start afresh, run the demo without --keep (make demo):"
        " it removes the kept database, e-mails and objects"
    ), message
    assert len(message.splitlines()) == 1
    assert not (state / "postgres" / "data" / "postmaster.pid").exists()  # nothing started


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (
            "kind: ConfigMap\nmetadata: {name: x}\n",
            "--crd files hold CustomResourceDefinitions only, found ConfigMap",
        ),
        ("a: b: c\n", ", line 1: not YAML (mapping values are not allowed here)"),
        ("- just\n- a list\n", "--crd files hold CustomResourceDefinitions only, found list"),
    ],
    ids=["not-a-crd", "not-yaml", "not-a-mapping"],
)
def test_the_emulator_refuses_crd_files_that_hold_no_crds_naming_the_file(
    tmp_path: pathlib.Path, content: str, said: str
) -> None:
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "kube_emulator", "--crd", str(crd_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"error: {crd_file}{'' if said.startswith(',') else ': '}{said}" in result.stderr
    assert "Traceback" not in result.stderr
