"""Reliability under Graph faults (docs/workflow.md, "Reliability suite").

The real app in the dev host, driven over real HTTP like Power Automate, against the Graph simulator's
``fault-mix`` (seeded), concurrent requests with different display names, all on one virtual clock: 30 % of
Graph calls faulted over 32 requests, and 70 % over 12 (enough to exhaust retries). Each mix runs once (a
module fixture); each test checks one guarantee of a run.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import requests

from devhost.host import HOST_KEYS_SETTING
from devhost.testing import DevHost
from graph_simulator import SEED_USERS, GraphSimulator
from graph_simulator.scenarios import MIX_FAULTS
from tests.e2e.workflow_env import (
    POLL_INTERVAL,
    CallbackReceiver,
    WorkflowEnv,
    gaps,
    request_body,
    workflow_env,
)

pytestmark = pytest.mark.azurite  # the app's queue bindings need storage

READ_TIMEOUT_SECONDS = 1.0
SLOW_SECONDS = 1.5  # a slow answer comes after the app's read timeout: its answer is lost
HOST_KEY = "reliability-host-key"
MAX_VIRTUAL_SECONDS = 3 * 3600
CLASSIFIED = {"GraphRejected", "GraphUnavailable", "OperationFailed", "Timeout", "CommunityNotFound"}
# Failures raised before Graph accepted any create of the request: their message starts with the step. In
# "creating the community" only creates that Graph did not process (429, 503, 504) fail the step; a create
# whose answer was lost is looked up and adopted, or the failure names the look-up step instead.
BEFORE_ANY_CREATE = (
    "resolving users:",
    "looking for communities with the same name:",
    "creating the community:",
)


@dataclass(frozen=True)
class Mix:
    rate: float
    seed: int
    requests: int
    by_upn: bool  # owners and members by UPN (looked up) or by object id (not looked up)
    outcomes: frozenset[str]  # error codes this seed is known to produce (besides Succeeded)


# Seeds under which every fault of the mix fires (asserted).
MAIN = Mix(rate=0.3, seed=56, requests=32, by_upn=True, outcomes=frozenset({"OperationFailed"}))
HARSH = Mix(
    rate=0.7, seed=6, requests=12, by_upn=False, outcomes=frozenset({"OperationFailed", "GraphUnavailable"})
)


@dataclass
class FaultRun:
    mix: Mix
    env: WorkflowEnv
    finals: dict[str, requests.Response]  # by display name
    answers: list[requests.Response]  # every answer of the API: starts, status checks, final documents
    callbacks: list[Any]
    records: list[logging.LogRecord]
    tokens: list[str]  # every bearer token the simulator issued


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record that reaches the root logger, which is set to DEBUG meanwhile (as caplog does)."""
    handler, root = _Records(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def bodies(mix: Mix, sim: GraphSimulator, callback_url: str) -> list[dict[str, Any]]:
    """Different display names. No user is looked up by two requests (by UPN, each owner is a user of its
    own and each seed user the member of one request), so each request's faults, hence its outcome, follow
    from the seed and its display name alone, however the requests interleave."""
    made = []
    for number in range(mix.requests):
        seed_user = SEED_USERS[number % len(SEED_USERS)]
        if mix.by_upn:
            owner = sim.add_user(
                f"0e000000-0000-4000-8000-{number:012d}",
                f"owner.{number:02d}@contoso.onmicrosoft.com",
                "Owner",
            )
            member = seed_user["userPrincipalName"] if number < len(SEED_USERS) else seed_user["id"]
        else:
            owner, member = SEED_USERS[(number + 1) % len(SEED_USERS)], seed_user["id"]
        made.append(
            request_body(
                f"Reliability {number:02d}",
                owners=[owner["userPrincipalName"] if mix.by_upn else owner["id"]],
                members=[member],
                callbackUrl=callback_url,
            )
        )
    return made


def drive(env: WorkflowEnv, requests_to_start: list[dict[str, Any]]) -> dict[str, list[requests.Response]]:
    """Start every request, then poll each one when its own ``Retry-After`` has passed (virtual time, moved
    by the host from timer to timer) until it is settled and its orchestration has completed."""
    headers = {"x-functions-key": HOST_KEY}
    now = env.host.clock.time
    answers: dict[str, list[requests.Response]] = {}
    due: dict[str, float] = {}
    for body in requests_to_start:
        started = requests.post(f"{env.api}/communities", json=body, headers=headers, timeout=30)
        assert started.status_code == 202, started.text
        answers[body["displayName"]] = [started]
        due[body["displayName"]] = now() + float(started.headers["Retry-After"])
    give_up = now() + MAX_VIRTUAL_SECONDS
    while due:
        next_poll = min(due.values())
        assert next_poll < give_up, f"still running: {sorted(due)}"
        env.host.advance(max(0.0, next_poll - now()))
        for name in [name for name, when in due.items() if when <= now()]:
            answer = requests.get(answers[name][-1].headers["Location"], headers=headers, timeout=30)
            answers[name].append(answer)
            if answer.status_code == 202:
                due[name] = now() + float(answer.headers["Retry-After"])
            else:
                del due[name]
    for seen in answers.values():
        env.host.run_until_status(seen[-1].json()["id"])  # the callback is delivered after the outcome
        seen.append(requests.get(seen[0].headers["Location"], headers=headers, timeout=30))
    return answers


@contextmanager
def fault_run(mix: Mix, azurite: Any) -> Iterator[FaultRun]:
    hosts: list[DevHost] = []

    def keyed_host(**options: Any) -> DevHost:
        hosts.append(DevHost(enforce_keys=True, **options).start())
        return hosts[-1]

    settings = {HOST_KEYS_SETTING: HOST_KEY, "GRAPH_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS)}
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        CallbackReceiver() as receiver,
        workflow_env(keyed_host, monkeypatch, azurite.connection_string, settings=settings) as env,
    ):
        try:
            env.sim.set_scenario("fault-mix", rate=mix.rate, seed=mix.seed, slow_seconds=SLOW_SECONDS)
            with captured_logs() as records:
                answers = drive(env, bodies(mix, env.sim, receiver.url))
            with env.sim.store.lock:
                tokens = list(env.sim.store.tokens)
            yield FaultRun(
                mix,
                env,
                {name: seen[-1] for name, seen in answers.items()},
                [answer for seen in answers.values() for answer in seen],
                list(receiver.bodies),
                records,
                tokens,
            )
        finally:
            for host in hosts:
                host.stop()


@pytest.fixture(scope="module")
def main_run(azurite: Any) -> Iterator[FaultRun]:
    with fault_run(MAIN, azurite) as run:
        yield run


@pytest.fixture(scope="module")
def harsh_run(azurite: Any) -> Iterator[FaultRun]:
    with fault_run(HARSH, azurite) as run:
        yield run


@pytest.fixture(params=["main_run", "harsh_run"], ids=["30%", "70%"])
def run(request: pytest.FixtureRequest) -> FaultRun:
    """Each mix's run."""
    found: FaultRun = request.getfixturevalue(request.param)
    return found


def communities_named(run: FaultRun, name: str) -> list[dict[str, Any]]:
    return [community for community in run.env.sim.communities() if community["displayName"] == name]


def test_the_mix_met_every_fault(run: FaultRun) -> None:
    [mix] = run.env.sim.scenarios.active()
    assert set(mix["fired"]) == {fault.label for fault in MIX_FAULTS}, mix["fired"]
    calls = run.env.graph_calls()
    assert run.mix.rate - 0.1 <= sum(mix["fired"].values()) / len(calls) <= run.mix.rate + 0.1


def test_every_request_ends_succeeded_or_with_a_classified_4xx(run: FaultRun) -> None:
    outcomes = Counter(
        (200, "Succeeded") if final.status_code == 200 else (final.status_code, final.json()["error"]["code"])
        for final in run.finals.values()
    )
    assert len(run.finals) == run.mix.requests
    assert set(outcomes) <= {(200, "Succeeded"), *((422, code) for code in CLASSIFIED)}, outcomes
    assert {code for _, code in outcomes} >= run.mix.outcomes, outcomes
    assert all(final.json()["callback"] == "delivered" for final in run.finals.values())


def test_exactly_one_community_per_succeeded_request(run: FaultRun) -> None:
    for name, final in run.finals.items():
        if final.status_code == 200:
            [community] = communities_named(run, name)
            assert final.json()["community"]["id"] == community["id"]


def test_no_community_behind_a_failure_before_graph_accepted_a_create(run: FaultRun) -> None:
    failed = {name: final.json()["error"] for name, final in run.finals.items() if final.status_code != 200}
    for name, error in failed.items():
        created = communities_named(run, name)
        # An operation Graph reports failed or skipped creates nothing, and the app never creates again.
        if error["code"] == "OperationFailed" or error["message"].startswith(BEFORE_ANY_CREATE):
            assert created == [], (name, error)
        else:  # Graph accepted a create (e.g. CommunityNotFound): at most that one community exists
            assert len(created) <= 1, (name, error)


def test_a_request_that_has_its_community_does_not_fail(harsh_run: FaultRun) -> None:
    # Graph unavailable while looking for duplicates, after the request has its community, once failed it.
    failed = [final.json() for final in harsh_run.finals.values() if final.status_code != 200]
    assert failed
    assert [
        (document["error"]["message"], document["community"])
        for document in failed
        if "community" in document
    ] == []


def test_status_checks_of_one_operation_are_a_poll_interval_apart(run: FaultRun) -> None:
    checks: dict[str, list[float]] = defaultdict(list)
    for call in run.env.graph_calls("operation"):
        checks[call["path"]].append(call["time"])
    assert checks
    for operation, times in checks.items():
        assert all(gap >= POLL_INTERVAL - 1e-6 for gap in gaps(times)), (operation, gaps(times))


def secrets(run: FaultRun) -> dict[str, str]:
    """What must never leave the app: each value with what it is."""
    found = {"the identity header": run.env.sim.identity_header, "the callback signature": "top-secret"}
    found["the callback query string"] = "sig=top-secret"
    found["the host key"] = HOST_KEY
    found["the master key"] = run.env.host.system_key
    for number, token in enumerate(run.tokens):
        found[f"bearer token {number}"] = token
        found[f"signature of bearer token {number}"] = token.rsplit(".", 1)[-1]
    return found


def user_principal_names(run: FaultRun) -> dict[str, str]:
    """The UPNs of the simulator's users (the seed users too), as written and as the app puts them in URLs."""
    found = {}
    for user in run.env.sim.users():
        upn = user["userPrincipalName"]
        for form in {upn, quote(upn, safe="@$"), quote(upn, safe="")}:
            found[form.lower()] = f"the UPN {upn}"
    return found


def leaks(texts: dict[str, str], watched: dict[str, str]) -> list[str]:
    return [
        f"{what} in {where}"
        for where, text in texts.items()
        for value, what in watched.items()
        if value.lower() in text.lower()
    ]


def log_texts(run: FaultRun) -> dict[str, str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return {
        f"log record {number} ({record.name})": formatter.format(record) + repr(vars(record))
        for number, record in enumerate(run.records)
    }


def answer_texts(run: FaultRun) -> dict[str, str]:
    texts = {f"API answer {n}": answer.text + repr(answer.headers) for n, answer in enumerate(run.answers)}
    texts.update({f"callback body {n}": json.dumps(body) for n, body in enumerate(run.callbacks)})
    return texts


@pytest.mark.parametrize(
    "channel", [log_texts, answer_texts], ids=["logs", "status answers and callback bodies"]
)
def test_no_secret_leaves_the_app(run: FaultRun, channel: Callable[[FaultRun], dict[str, str]]) -> None:
    texts = channel(run)
    assert texts
    assert leaks(texts, secrets(run)) == []


def test_no_user_principal_name_in_the_logs(main_run: FaultRun) -> None:
    assert leaks(log_texts(main_run), user_principal_names(main_run)) == []


def test_no_user_principal_name_in_status_answers_or_callback_bodies(main_run: FaultRun) -> None:
    assert leaks(answer_texts(main_run), user_principal_names(main_run)) == []
