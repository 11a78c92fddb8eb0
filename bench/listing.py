"""Listing requests: a page of ``GET /api/communities/requests`` against one status GET, at two hub sizes.

The task hub is seeded, not provisioned: ``seed_requests`` writes finished and running ``provision_community``
instances straight into a fresh dev host store through its transaction API (``Store.transaction()``,
``put_instance``), with what the app would have stored: ids as the app makes them (``req-`` and 32 hex
digits; a retry's id from ``retry_id_for``), a ``ProvisioningInput`` as input, and as custom status and output
the document ``WorkflowState.document`` renders after the steps the orchestrator notes (phases, three status
checks, members, callback). Created times are spread over the last 24 hours; the newest 3 % still run (waiting
for Graph), about 89 % succeeded, 7 % failed (DuplicateName, UserNotFound, OperationFailed, Timeout,
GraphUnavailable, GraphRejected), 1 % were canceled, and a third of those failed or canceled were retried by a
later request. Every request that reached the create step also left its create-try marker
(``req-…:create-…``, a ``create_attempt_marker`` instance), as the app does, so the ``req-`` prefix matches
almost twice as many instances as there are requests. The dev host then starts on that store (in this
interpreter, a fresh one per size: ``bench.child``) and is asked over loopback HTTP, by a client in the same
process, for:

* **status GET**: ``GET /api/communities/requests/{id}`` of one succeeded request;
* **first page**: the list with the default ``top`` (50), ``top=100`` and ``top=500``;
* **filtered**: ``status=Failed``; ``displayName`` containing a word 5 % of the names hold; ``createdFrom`` /
  ``createdTo`` one hour apart in the middle of the day;
* **5th page**: the page reached by following ``nextLink`` four times from the first page (default ``top``),
  asked for again.

The status GET and the four pages on the way to the 5th warm up; then every query is asked once per round, in
rotating order (the status GET five times), for ``repeats`` rounds. The medians are shown, each one's ratio to
the status GET, and the same queries at the smaller size give the scaling ratio: 10,000 / 1,000 requests is
10 for a list whose cost grows like the task hub, 100 for one that grows like its square.

Where the time goes, per query: **API calls** is how many management API requests (``instances/…``) the app
made for it; **API ms** the dev host's time inside its management API for them (its SQLite query, each row's
JSON parsed and the page serialized again); **API MiB** the JSON those answers carried to the app; **app CPU
ms** the CPU time of the worker's event loop thread, where the app's function runs (reading the answers, a
status document per row, sorting, the page). The rest of the wall time is HTTP inside this one process
(server threads, the client) and waiting for the GIL. One first page at the smaller size is also run under
``cProfile`` on both threads (the app's thread, and the management API's calls); their heaviest functions
are listed. Peak memory is that of the dev host process (``bench.child``'s way), which here also holds the
app and the HTTP client.

Reading the figures: the list reads the instance query in created-time windows going back from the newest
row it needs (``triggers/listing.py``), so a page costs the instances created since its oldest row, and the
dev host's management API answers one page per continuation token, filtered and ordered in SQLite, as the
extension reads one Azure Table page per token (``$top`` rows, at most 1,000; the filter on created time,
runtime status and the id prefix applied by the service). Pages near the top stay flat as the task hub grows;
a filter that matches few rows, or a created range far back, reads as far back as it must (the window query
can bound ``createdTime`` only from below: continue-as-new moves it later than the request's ``createdAt``).
"""

from __future__ import annotations

import base64
import cProfile
import json
import math
import os
import pstats
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from bench.processes import ROOT, STORAGE_VARIABLE, BenchError, own_rss_mib, run_child
from bench.report import Ratio, Section, doc_body
from provisioning.models import ORCHESTRATOR_NAME
from provisioning.steps import CREATE_ATTEMPT_MARKER

ORCHESTRATOR = ORCHESTRATOR_NAME
MARKER_ORCHESTRATOR = CREATE_ATTEMPT_MARKER
LIST_PATH = "/api/communities/requests"
DEFAULT_TOP = 50
PAGES_FOLLOWED = 5
NAME_FILTER = "sustainab"  # in the topic "Sustainability": one topic of 20
WINDOW_HOURS = 1
STATUS_GETS_PER_ROUND = 5  # a status GET takes milliseconds: more samples of it per round

REGIONS = ("EMEA", "APAC", "Americas", "Nordics", "DACH", "Benelux", "Iberia", "UK & Ireland")
DEPARTMENTS = (
    "Engineering",
    "Finance",
    "Marketing",
    "Sales",
    "People",
    "Legal",
    "Operations",
    "Customer Support",
    "Research",
    "Procurement",
    "IT",
    "Design",
)
TOPICS = (
    "Community of Practice",
    "News",
    "Guild",
    "Q&A",
    "Onboarding",
    "Leadership Circle",
    "Book Club",
    "Hackathon",
    "Sustainability",
    "Wellbeing",
    "Mentoring",
    "All Hands",
    "Innovation",
    "Lunch & Learn",
    "Product Updates",
    "Security Champions",
    "Data & Analytics",
    "Career Growth",
    "Volunteering",
    "Townhall",
)
# Outcome shares: the newest RUNNING_SHARE still run; the others draw from these weights.
RUNNING_SHARE = 0.03
OUTCOMES = (
    ("Succeeded", 89.0),
    ("DuplicateName", 2.5),
    ("UserNotFound", 1.5),
    ("OperationFailed", 1.5),
    ("Timeout", 0.5),
    ("GraphUnavailable", 0.5),
    ("GraphRejected", 0.5),
    ("Canceled", 1.0),
)
# Outcomes that end before the create step: they leave no create-try marker.
BEFORE_CREATE = frozenset({"DuplicateName", "UserNotFound"})
RETRIED_SHARE = 1 / 3
CALLBACK_HOST = "prod-01.westeurope.logic.azure.com"


# -- seeding ------------------------------------------------------------------------------------------------


@dataclass
class SeededHub:
    """What ``seed_requests`` wrote: counts, and ids and times the queries use."""

    requests: int
    markers: int
    outcomes: Counter[str]
    succeeded_id: str
    start: datetime  # the oldest created time is at or after this
    end: datetime  # the newest is before this
    name_matches: int
    window: tuple[datetime, datetime]
    window_matches: int
    input_bytes: int  # JSON text written: the inputs, summed
    status_bytes: int  # and the custom statuses and outputs


def seed_requests(store_path: Path, count: int, *, now: datetime, seed: int = 20260101) -> SeededHub:
    """Write ``count`` requests and their create-try markers into the dev host store at ``store_path`` in one
    transaction, as the app would have left them after a day of use. Deterministic for a given ``seed``."""
    from devhost.durable.store import InstanceRow, Store

    rng = random.Random(seed)
    start = now - timedelta(hours=24)
    offsets = sorted(rng.uniform(0, 24 * 3600 - 300) for _ in range(count))
    running_from = count - max(1, round(count * RUNNING_SHARE)) if count >= 20 else count
    names, weights = zip(*OUTCOMES, strict=True)
    retry_queue: list[tuple[str, datetime]] = []
    outcomes: Counter[str] = Counter()
    rows = []
    markers = 0
    succeeded_id = ""
    name_matches = 0
    window = (start + timedelta(hours=12), start + timedelta(hours=12 + WINDOW_HOURS))
    window_matches = 0
    input_bytes = status_bytes = 0
    for index, offset in enumerate(offsets):
        created = (start + timedelta(seconds=offset)).replace(microsecond=0)
        retry_of = None
        if retry_queue and retry_queue[0][1] < created and rng.random() < 0.5:
            retry_of = retry_queue.pop(0)[0]
        outcome = "Running" if index >= running_from else rng.choices(names, weights)[0]
        if retry_of is not None and outcome != "Running":
            outcome = "Succeeded"  # what a retry is for
        provisioning_input = _request_input(rng, index, created, retry_of)
        custom_status, output, updated = _documents(rng, provisioning_input, outcome, created)
        request_id = provisioning_input.request_id
        input_json = _dumps(provisioning_input.to_json())
        input_bytes += len(input_json)
        status_bytes += len(custom_status) + len(output or "")
        rows.append(
            InstanceRow(
                instance_id=request_id,
                name=ORCHESTRATOR,
                execution_id=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                runtime_status="Running" if outcome == "Running" else "Completed",
                input=input_json,
                output=output,
                custom_status=custom_status,
                created_time=created.timestamp(),
                last_updated_time=updated.timestamp(),
            )
        )
        outcomes[outcome] += 1
        if outcome == "Succeeded" and not succeeded_id:
            succeeded_id = request_id
        if outcome not in ("Succeeded", "Running") and retry_of is None and rng.random() < RETRIED_SHARE:
            retry_queue.append((request_id, created + timedelta(minutes=rng.uniform(5, 90))))
        name_matches += NAME_FILTER in provisioning_input.request.display_name.casefold()
        window_matches += window[0] <= created <= window[1]
        if outcome not in BEFORE_CREATE:
            markers += 1
            try_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            rows.append(
                InstanceRow(
                    instance_id=f"{request_id}:create-{try_id}",
                    name=MARKER_ORCHESTRATOR,
                    execution_id=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                    runtime_status="Completed",
                    input=None,
                    output="null",
                    custom_status=None,
                    created_time=created.timestamp() + 2,
                    last_updated_time=created.timestamp() + 2,
                )
            )
    store = Store(store_path)
    try:
        with store.transaction() as tx:
            for row in rows:
                tx.put_instance(row)
    finally:
        store.close()
    return SeededHub(
        requests=count,
        markers=markers,
        outcomes=outcomes,
        succeeded_id=succeeded_id,
        start=start,
        end=now,
        name_matches=name_matches,
        window=window,
        window_matches=window_matches,
        input_bytes=input_bytes,
        status_bytes=status_bytes,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _request_input(rng: random.Random, index: int, created: datetime, retry_of: str | None) -> Any:
    """The ``ProvisioningInput`` the intake would have written for a request accepted at ``created``."""
    from provisioning.callbacks import CallbackPolicy
    from provisioning.idempotency import REQUEST_ID_PREFIX, body_hash, instance_id_for_key
    from provisioning.models import ProvisioningInput, validate_request
    from provisioning.workflow import to_iso
    from triggers.requests_api import retry_id_for

    name = f"{rng.choice(REGIONS)} {rng.choice(DEPARTMENTS)} {rng.choice(TOPICS)}"
    members_drawn = rng.random()
    member_count = (
        0 if members_drawn < 0.5 else rng.randint(1, 25) if members_drawn < 0.85 else rng.randint(26, 150)
    )
    body: dict[str, Any] = {
        "displayName": name,
        "owners": [_guid(rng) for _ in range(rng.randint(1, 3))],
        "members": [f"user{rng.randrange(100000):05d}@contoso.com" for _ in range(member_count)],
        "privacy": rng.choice(("private", "private", "public")),
    }
    if rng.random() < 0.6:
        body["description"] = f"Where the {name} people share news, questions and events."
    if rng.random() < 0.4:
        body["callbackUrl"] = (
            f"https://{CALLBACK_HOST}/workflows/{uuid.UUID(int=rng.getrandbits(128)).hex}/triggers/manual/"
            f"paths/invoke?api-version=2016-06-01&sig={uuid.UUID(int=rng.getrandbits(128)).hex}"
        )
    source = "queue" if rng.random() < 0.3 else "http"
    request = validate_request(body, callback_policy=CallbackPolicy((CALLBACK_HOST,)))
    key = None
    if retry_of is not None:
        request_id = retry_id_for(retry_of)
    elif source == "queue" or rng.random() < 0.5:
        key = f"bench-{index}-{rng.getrandbits(32):08x}"
        request_id = instance_id_for_key(key, "queue" if source == "queue" else "http")
    else:
        request_id = REQUEST_ID_PREFIX + uuid.UUID(int=rng.getrandbits(128), version=4).hex
    return ProvisioningInput(
        request_id=request_id,
        source=source,
        request=request.spec(),
        callback_url=request.callback_url,
        created_at=to_iso(created),
        body_hash=body_hash(request),
        idempotency_key=key,
        retry_of=retry_of,
    )


def _documents(
    rng: random.Random, provisioning_input: Any, outcome: str, created: datetime
) -> tuple[str, str | None, datetime]:
    """Custom status, output (JSON text; None while running) and last update time of a request that went
    through the orchestrator's steps to ``outcome``, rendered by ``WorkflowState.document``."""
    from provisioning import workflow
    from provisioning.graph.errors import ErrorKind, GraphError
    from provisioning.models import CallbackState, Phase, RequestStatus

    state = workflow.WorkflowState()
    spec = provisioning_input.request
    if provisioning_input.callback_url:
        state.callback = CallbackState.PENDING
    at = created

    def step(phase: Phase, seconds: float) -> None:
        nonlocal at
        at += timedelta(seconds=seconds)
        state.phase = phase
        state.note_phase(at)

    def graph_error(status: int, code: str) -> GraphError:
        kind = ErrorKind.TRANSIENT if status >= 500 else ErrorKind.PERMANENT
        return GraphError(kind, f"{code} from Graph", http_status=status, code=code, request_id=_guid(rng))

    def checks(count: int, last: str) -> None:
        nonlocal at
        step(Phase.WAITING_FOR_GRAPH, 0.5)
        state.polling_started_at = workflow.to_iso(at)
        for check in range(1, count + 1):
            at += timedelta(seconds=30)
            state.checks = check
            state.operation_status = last if check == count else "running"
            state.note(at, "check", graphStatus=state.operation_status)
            state.next_check_at = workflow.to_iso(at + timedelta(seconds=30))

    failure: workflow.WorkflowError | None = None
    step(Phase.RESOLVING_USERS, 0.4)
    state.owner_ids = [_guid(rng) for _ in spec.owners]
    if outcome == "UserNotFound":
        position = rng.randrange(len(spec.owners))
        failure = workflow.owner_not_found(position, graph_error(404, "Request_ResourceNotFound"))
    else:
        step(Phase.CHECKING_NAME, 0.6)
        if outcome == "DuplicateName":
            failure = workflow.duplicate_name(spec.display_name, [_community_id(rng)])
    if failure is None:
        step(Phase.CREATING, 0.5)
        state.create_attempts = 1
        if outcome == "GraphRejected":
            failure = workflow.rejected(graph_error(400, "InvalidRequest"), "creating the community")
        elif outcome == "GraphUnavailable":
            failure = workflow.gave_up(graph_error(503, "ServiceUnavailable"), "creating the community", 6)
        elif outcome == "Running":
            checks(rng.randint(1, 2), "running")
            document = state.document(provisioning_input, at)
            return _dumps(workflow.fit_custom_status(document)), None, at
        elif outcome == "Canceled":
            checks(1, "running")
            failure = workflow.CanceledError()
        elif outcome == "OperationFailed":
            checks(rng.randint(2, 4), "failed")
            failure = workflow.operation_failed("failed", "The group could not be provisioned.", _guid(rng))
        elif outcome == "Timeout":
            checks(120, "running")
            failure = workflow.timed_out(60, "running", 120)
        else:
            checks(3, "succeeded")
    if failure is None:
        step(Phase.CONFIRMING, 0.3)
        state.community = {
            "id": _community_id(rng),
            "displayName": spec.display_name,
            "description": spec.description,
            "privacy": spec.privacy,
            "groupId": _guid(rng),
        }
        if spec.members:
            step(Phase.ADDING_MEMBERS, 0.4)
            at += timedelta(seconds=0.3 * math.ceil(len(spec.members) / 20))
            state.members_added = [_guid(rng) for _ in spec.members]
            if rng.random() < 0.1:
                missing = state.members_added.pop()
                failed = {"index": len(spec.members) - 1, "id": missing, "error": "user not found"}
                state.members_failed.append(failed)
        state.status = RequestStatus.SUCCEEDED
    else:
        state.fail(failure, at)
    if provisioning_input.callback_url:
        step(Phase.NOTIFYING, 0.2)
        state.callback = CallbackState.DELIVERED
    at += timedelta(seconds=0.2)
    state.phase = Phase.DONE
    state.note_phase(at)
    document = state.document(provisioning_input, at)
    return _dumps(workflow.fit_custom_status(document)), _dumps(document), at


def _community_id(rng: random.Random) -> str:
    """A Viva Engage community id: base64 of ``{"_type":"Group","id":"<digits>"}``."""
    raw = f'{{"_type":"Group","id":"{rng.randrange(10**11, 10**12)}"}}'.encode()
    return base64.b64encode(raw).decode().rstrip("=")


# -- measuring in the dev host process ----------------------------------------------------------------------


@dataclass
class _Meter:
    """The dev host's management API (``ManagementApi.handle``), timed per call on its own thread; and an
    optional profiler around each call."""

    calls: int = 0
    seconds: float = 0.0
    payload_bytes: int = 0
    profile: cProfile.Profile | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.calls, self.seconds, self.payload_bytes = 0, 0.0, 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        from devhost.management import ManagementApi

        original = ManagementApi.handle
        meter = self

        def handle(api: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            if meter.profile is not None:
                response = meter.profile.runcall(original, api, *args, **kwargs)
            else:
                response = original(api, *args, **kwargs)
            elapsed = time.perf_counter() - started
            with meter.lock:
                meter.calls += 1
                meter.seconds += elapsed
                meter.payload_bytes += len(response.body)
            return response

        ManagementApi.handle = handle  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            ManagementApi.handle = original  # type: ignore[method-assign]


async def _loop_thread_cpu() -> float:
    return time.thread_time()


async def _switch_profile(profile: cProfile.Profile, on: bool) -> None:
    if on:
        profile.enable()
    else:
        profile.disable()


def _on_worker_loop(function: Callable[..., Any], **kwargs: Any) -> Any:
    """Run an async function on the worker's event loop thread (where the app's async functions run)."""
    from devhost.worker import run_callable

    return run_callable(function, kwargs)


@dataclass
class _Sample:
    ms: float
    api_calls: int
    api_ms: float
    api_bytes: int
    app_cpu_ms: float
    items: int
    next_link: str | None


STATUS_GET = "status GET (one request)"
FIRST_PAGE = f"list, first page (top {DEFAULT_TOP})"
TOP_500 = "list, top=500"
FAILED_PAGE = "list, status=Failed"
WINDOW_PAGE = f"list, created in a {WINDOW_HOURS} h window"


def _walk_top(quick: bool) -> int:
    return 10 if quick else DEFAULT_TOP


def _walk_label(quick: bool) -> str:
    return f"list, page {PAGES_FOLLOWED} via nextLink (top {_walk_top(quick)})"


def _queries(hub: SeededHub, quick: bool) -> list[tuple[str, str]]:
    """Label and path of each query; the last one's path is found by following nextLinks."""
    window_from, window_to = (moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in hub.window)
    return [
        (STATUS_GET, f"{LIST_PATH}/{hub.succeeded_id}"),
        (FIRST_PAGE, LIST_PATH),
        ("list, top=100", f"{LIST_PATH}?top=100"),
        (TOP_500, f"{LIST_PATH}?top=500"),
        (FAILED_PAGE, f"{LIST_PATH}?status=Failed"),
        (f"list, displayName '{NAME_FILTER}'", f"{LIST_PATH}?{urlencode({'displayName': NAME_FILTER})}"),
        (WINDOW_PAGE, f"{LIST_PATH}?{urlencode({'createdFrom': window_from, 'createdTo': window_to})}"),
        (_walk_label(quick), ""),
    ]


def measure(params: dict[str, Any]) -> dict[str, Any]:
    from devhost.testing import DevHost

    count: int = params["requests"]
    repeats: int = params["repeats"]
    quick: bool = params["quick"]
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="bench-listing-") as directory:
        state_path = Path(directory) / "state.db"
        started = time.perf_counter()
        hub = seed_requests(state_path, count, now=now)
        seed_seconds = time.perf_counter() - started
        meter = _Meter()
        settings = {
            "TASKHUB_NAME": "bench",
            "PROVISIONING_QUEUE": "bench-requests",
            "RESULTS_QUEUE": "bench-results",
        }
        with (
            meter.installed(),
            DevHost(
                app="function_app:app",
                state_path=state_path,
                settings=settings,
                storage_connection_string=os.environ[STORAGE_VARIABLE],
            ) as host,
        ):
            session = requests.Session()
            rss_before = own_rss_mib()

            def ask(path: str) -> _Sample:
                meter.reset()
                loop_cpu = _on_worker_loop(_loop_thread_cpu)
                started = time.perf_counter()
                response = session.get(host.base_url + path, timeout=600)
                elapsed = time.perf_counter() - started
                loop_cpu = _on_worker_loop(_loop_thread_cpu) - loop_cpu
                if response.status_code != 200:
                    raise BenchError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
                body = response.json()
                link = body.get("nextLink")
                return _Sample(
                    ms=elapsed * 1000,
                    api_calls=meter.calls,
                    api_ms=meter.seconds * 1000,
                    api_bytes=meter.payload_bytes,
                    app_cpu_ms=loop_cpu * 1000,
                    items=len(body.get("items", [])) if "items" in body else 1,
                    next_link=urlsplit(link).path + "?" + urlsplit(link).query if link else None,
                )

            queries = _queries(hub, quick)
            paths = dict(queries)
            ask(paths[STATUS_GET])  # warm-up: the app's first call, the durable client's session
            # Following the nextLinks also warms the list path up; each page's time is kept.
            walk = _walk(ask, f"{LIST_PATH}?top={_walk_top(quick)}", PAGES_FOLLOWED - 1)
            paths[_walk_label(quick)] = walk[-1][1]
            samples: dict[str, list[_Sample]] = {label: [] for label, _ in queries}
            labels = list(paths)
            for repeat in range(repeats):
                turn = labels[repeat % len(labels) :] + labels[: repeat % len(labels)]
                for label in turn:
                    for _ in range(STATUS_GETS_PER_ROUND if label == STATUS_GET else 1):
                        samples[label].append(ask(paths[label]))
                if repeat == 0:
                    _check({label: runs[0] for label, runs in samples.items()}, hub, quick)
            rss_after = own_rss_mib()
            profile = _profile(meter, ask, paths[FIRST_PAGE]) if params.get("profile") else None
            session.close()
    return {
        "requests": count,
        "markers": hub.markers,
        "outcomes": dict(hub.outcomes),
        "nameMatches": hub.name_matches,
        "windowMatches": hub.window_matches,
        "inputMiB": hub.input_bytes / 2**20,
        "statusMiB": hub.status_bytes / 2**20,
        "seedSeconds": seed_seconds,
        "repeats": repeats,
        "queries": {
            label: {
                "ms": statistics.median(s.ms for s in runs),
                "samples": len(runs),
                "apiCalls": statistics.median(s.api_calls for s in runs),
                "apiMs": statistics.median(s.api_ms for s in runs),
                "apiMiB": statistics.median(s.api_bytes for s in runs) / 2**20,
                "appCpuMs": statistics.median(s.app_cpu_ms for s in runs),
                "items": runs[-1].items,
                "nextLink": runs[-1].next_link is not None,
            }
            for label, runs in samples.items()
        },
        "walkPagesMs": [sample.ms for sample, _ in walk],
        "rssBeforeMiB": rss_before,
        "rssAfterMiB": rss_after,
        "profile": profile,
    }


def _walk(ask: Callable[[str], _Sample], first: str, follow: int) -> list[tuple[_Sample, str]]:
    """Ask ``first`` and follow ``follow`` nextLinks: each page's sample, with the path of the page after."""
    pages = []
    path = first
    for _ in range(follow):
        sample = ask(path)
        if sample.next_link is None:
            raise BenchError(f"the list ended before page {follow + 1} (at {path})")
        path = sample.next_link
        pages.append((sample, path))
    return pages


def _check(first: dict[str, _Sample], hub: SeededHub, quick: bool) -> None:
    """The answers are what the seeded hub holds (a list that answers fast but wrong measures nothing)."""
    failed = sum(
        n for outcome, n in hub.outcomes.items() if outcome not in ("Succeeded", "Running", "Canceled")
    )
    listed = hub.requests
    expected = {
        FIRST_PAGE: min(DEFAULT_TOP, listed),
        "list, top=100": min(100, listed),
        TOP_500: min(500, listed),
        FAILED_PAGE: min(DEFAULT_TOP, failed),
        f"list, displayName '{NAME_FILTER}'": min(DEFAULT_TOP, hub.name_matches),
        WINDOW_PAGE: min(DEFAULT_TOP, hub.window_matches),
        _walk_label(quick): min(_walk_top(quick), max(0, listed - (PAGES_FOLLOWED - 1) * _walk_top(quick))),
    }
    for label, items in expected.items():
        if first[label].items != items:
            raise BenchError(f"{label}: {first[label].items} rows, expected {items}")


def _profile(meter: _Meter, ask: Callable[[str], _Sample], path: str) -> dict[str, Any]:
    """One request of ``path`` under cProfile: the app's loop thread and the management API calls."""
    app, api = cProfile.Profile(), cProfile.Profile()
    meter.profile = api
    _on_worker_loop(_switch_profile, profile=app, on=True)
    try:
        sample = ask(path)
    finally:
        _on_worker_loop(_switch_profile, profile=app, on=False)
        meter.profile = None
    return {"ms": sample.ms, "app": _top_functions(app), "api": _top_functions(api)}


def _top_functions(profile: cProfile.Profile, count: int = 6) -> list[dict[str, Any]]:
    """The functions with the most own time, and the project's functions with the most cumulative time; the
    event loop's wait for I/O (``epoll``) is left out, also of the total."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = []
    for (path, line, name), (_, calls, own, cumulative, _) in stats.items():
        if "epoll" in name:
            continue
        row = {"where": _where(path, line, name), "calls": calls, "own": own, "cum": cumulative}
        rows.append({**row, "project": _in_project(path)})
    total = sum(row["own"] for row in rows)
    own_top = sorted(rows, key=lambda row: row["own"], reverse=True)[:count]
    project_rows = [row for row in rows if row["project"]]
    project_top = sorted(project_rows, key=lambda row: row["cum"], reverse=True)[:count]
    return [
        {"totalMs": total * 1000},
        *[{**row, "kind": "own"} for row in own_top],
        *[{**row, "kind": "cum"} for row in project_top],
    ]


def _where(path: str, line: int, name: str) -> str:
    if path == "~":
        return name  # a builtin, e.g. <method 'loads' of ...>
    shown: Path | str
    try:
        shown = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        parts = Path(path).parts
        shown = (
            Path(*parts[parts.index("site-packages") + 1 :]) if "site-packages" in parts else Path(path).name
        )
    return f"{name} ({shown}:{line})"


def _in_project(path: str) -> bool:
    if path == "~":
        return False
    try:
        relative = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        return False
    return relative.parts[0] not in (".venv", "bench")


# -- the parent side ----------------------------------------------------------------------------------------


def run(quick: bool) -> Section:
    section = Section("listing", "Listing requests with a full task hub", doc_body(__doc__))
    small, large = (50, 200) if quick else (1_000, 10_000)
    repeats = {small: 2, large: 2} if quick else {small: 7, large: 3}
    results = {
        count: run_child(
            "listing",
            {"requests": count, "repeats": repeats[count], "quick": quick, "profile": count == small},
            timeout=3 * 3600,
        )
        for count in (small, large)
    }
    labels = list(results[large]["queries"])
    for count, result in results.items():
        _say_size(section, count, result)
    small_q, large_q = results[small]["queries"], results[large]["queries"]
    section.say(
        f"scaling, {large:,} / {small:,} requests in the task hub (10 = grows like the task hub, 100 = like "
        "its square):"
    )
    section.table(
        ("query", f"ms at {small:,}", f"at {large:,}", "ratio", "API ms", "app CPU", "API MiB"),
        [
            (
                label,
                _ms(small_q[label]["ms"]),
                _ms(large_q[label]["ms"]),
                _ratio(large_q[label]["ms"], small_q[label]["ms"]),
                _ratio(large_q[label]["apiMs"], small_q[label]["apiMs"]),
                _ratio(large_q[label]["appCpuMs"], small_q[label]["appCpuMs"]),
                _ratio(large_q[label]["apiMiB"], small_q[label]["apiMiB"]),
            )
            for label in labels
        ],
        (40, 9, 9, 6, 7, 8, 8),
    )
    profile = results[small].get("profile")
    if profile:
        _say_profile(section, profile, f"one {FIRST_PAGE.removeprefix('list, ')} at {small:,} requests")
    memory = (
        f"dev host {results[large]['peakMiB']:.0f} MiB at {large:,} requests, "
        f"{results[small]['peakMiB']:.0f} MiB at {small:,}"
    )
    section.say("peak memory: " + memory + " (the process also holds the app and the HTTP client)")
    single = large_q[STATUS_GET]["ms"]
    for label in (FIRST_PAGE, TOP_500, FAILED_PAGE, WINDOW_PAGE, _walk_label(quick)):
        query = large_q[label]
        section.ratios.append(
            Ratio(
                f"Requests list, {label.removeprefix('list, ')} / one status GET, {large:,} requests",
                query["ms"] / single,
                figure=f"{_ms(query['ms'])} ms / {_ms(single)} ms; {query['apiCalls']:.0f} management API "
                f"calls, {query['apiMiB']:.0f} MiB; dev host API {_ms(query['apiMs'])} ms, app CPU "
                f"{_ms(query['appCpuMs'])} ms",
                memory=memory,
            )
        )
    section.ratios.append(
        Ratio(
            f"Requests list, first page: {large:,} / {small:,} requests in the task hub",
            large_q[FIRST_PAGE]["ms"] / small_q[FIRST_PAGE]["ms"],
            figure=f"{_ms(large_q[FIRST_PAGE]['ms'])} ms / {_ms(small_q[FIRST_PAGE]['ms'])} ms "
            f"(dev host API x{_ratio(large_q[FIRST_PAGE]['apiMs'], small_q[FIRST_PAGE]['apiMs'])}, app CPU "
            f"x{_ratio(large_q[FIRST_PAGE]['appCpuMs'], small_q[FIRST_PAGE]['appCpuMs'])}; status GET "
            f"{_ms(single)} / {_ms(small_q[STATUS_GET]['ms'])} ms)",
            memory=memory,
        )
    )
    return section


def _say_size(section: Section, count: int, result: dict[str, Any]) -> None:
    queries = result["queries"]
    single = queries[STATUS_GET]["ms"]
    outcomes = ", ".join(
        f"{name} {n:,}" for name, n in sorted(result["outcomes"].items(), key=lambda kv: -kv[1])
    )
    section.say(
        f"{count:,} requests + {result['markers']:,} create-try markers = {count + result['markers']:,} "
        f"instances with the req- prefix, seeded in {result['seedSeconds']:.1f} s (inputs "
        f"{result['inputMiB']:.1f} MiB, custom statuses and outputs {result['statusMiB']:.1f} MiB of JSON)"
    )
    section.say(
        f"  {outcomes}; '{NAME_FILTER}' in {result['nameMatches']:,} names; {result['windowMatches']:,} "
        f"created in the {WINDOW_HOURS} h window"
    )
    section.table(
        ("query", "rows", "median ms", "/status GET", "API calls", "API ms", "API MiB", "app CPU ms"),
        [
            (
                label,
                f"{q['items']}{'+' if q['nextLink'] else ''}",
                _ms(q["ms"]),
                _ratio(q["ms"], single),
                f"{q['apiCalls']:.0f}",
                _ms(q["apiMs"]),
                f"{q['apiMiB']:.1f}",
                _ms(q["appCpuMs"]),
            )
            for label, q in queries.items()
        ],
        (40, 5, 10, 11, 9, 8, 8, 10),
    )
    walk = ", ".join(_ms(ms) for ms in result["walkPagesMs"])
    section.say(
        f"  medians of {result['repeats']} rounds ({queries[STATUS_GET]['samples']} status GETs); "
        f"rows '+': a nextLink came with them; pages 1-{len(result['walkPagesMs'])} on the way to the "
        f"{PAGES_FOLLOWED}th (one each, the first also a warm-up): {walk} ms"
    )
    section.say(
        f"  dev host process: peak {result['peakMiB']:.0f} MiB; RSS {result['rssBeforeMiB']:.0f} MiB before "
        f"the first list, {result['rssAfterMiB']:.0f} MiB after the rounds"
    )
    section.say()


def _say_profile(section: Section, profile: dict[str, Any], what: str) -> None:
    section.say()
    section.say(f"{what} under cProfile ({_ms(profile['ms'])} ms wall; the profiler slows it):")
    for thread, entries in (
        ("app, worker loop thread", profile["app"]),
        ("dev host, management API", profile["api"]),
    ):
        section.say(f"  {thread}: {_ms(entries[0]['totalMs'])} ms profiled")
        for kind, heading in (("own", "most own time"), ("cum", "the project's functions, cumulative")):
            section.say(f"    {heading}:")
            for row in entries[1:]:
                if row["kind"] == kind:
                    value = row["own"] if kind == "own" else row["cum"]
                    section.say(f"      {value * 1000:8.0f} ms {row['calls']:>9,} calls  {row['where']}")


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.1f}" if base > 0 else "-"


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
