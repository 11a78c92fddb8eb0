"""SQLite persistence of the durable engine.

Every state transition (start, episode, activity result, event, terminate, purge) is one transaction, so a
process killed at any moment restarts from a consistent state. Layout:

* `instances`  — one row per instance id: current execution, runtime status, input/output/custom status.
* `history`    — the current execution's DTFx history events (JSON), in order.
* `messages`   — the orchestrator inbox: events (ExecutionStarted, TaskCompleted, TimerFired, EventRaised,
                 ...) due at a time, for one execution or (execution_id NULL) whichever is current; an episode
                 consumes the messages due for its instance at once.
* `activities` — activity work items; `running` ones are reset to `pending` on start-up (at-least-once).
* `entities`   — durable entity state per entity instance (`@name@key`); their operations wait in `messages`.
* `clock`      — the latest clock time the engine saw (one row): a restarted scaled clock continues there.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devhost.durable.history import Event

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    runtime_status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created_time REAL NOT NULL,
    last_updated_time REAL NOT NULL,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER
);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, position)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT,
    due REAL NOT NULL,
    timer_id INTEGER,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (due);
CREATE INDEX IF NOT EXISTS messages_instance ON messages (instance_id);
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
);
CREATE TABLE IF NOT EXISTS entities (
    instance_id TEXT PRIMARY KEY,
    entity_exists INTEGER NOT NULL,
    state TEXT,
    failed_batches INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS clock (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    latest REAL NOT NULL
);
"""

_INSTANCE_COLUMNS = (
    "instance_id",
    "name",
    "execution_id",
    "runtime_status",
    "input",
    "output",
    "custom_status",
    "created_time",
    "last_updated_time",
    "parent_instance_id",
    "parent_execution_id",
    "parent_task_id",
)


@dataclass
class InstanceRow:
    instance_id: str
    name: str
    execution_id: str
    runtime_status: str
    input: str | None
    output: str | None
    custom_status: str | None
    created_time: float
    last_updated_time: float
    parent_instance_id: str | None = None
    parent_execution_id: str | None = None
    parent_task_id: int | None = None

    @property
    def created(self) -> datetime:
        return datetime.fromtimestamp(self.created_time, UTC)

    @property
    def last_updated(self) -> datetime:
        return datetime.fromtimestamp(self.last_updated_time, UTC)


@dataclass
class Message:
    id: int
    execution_id: str | None
    event: Event


@dataclass
class EntityRow:
    instance_id: str
    exists: bool
    state: str | None  # JSON text of the entity state
    failed_batches: int  # consecutive batches that failed inside the worker (they are retried)


@dataclass
class ActivityWorkItem:
    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str


class Store:
    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One connection shared by the engine's threads, serialized by a lock (every use is short).
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._connection)
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")


def latest_recorded_time(path: str | Path) -> datetime | None:
    """The latest time a store file recorded (clock, instance updates, delivered events), or None when there
    is no store yet."""
    if not Path(path).exists():
        return None
    store = Store(path)
    try:
        with store.transaction() as tx:
            latest = tx.latest_recorded_time()
    finally:
        store.close()
    return None if latest is None else datetime.fromtimestamp(latest, UTC)


class Transaction:
    """The queries of one transaction (only used inside `Store.transaction()`)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    # -- instances -----------------------------------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        row = self._db.execute(
            f"SELECT {', '.join(_INSTANCE_COLUMNS)} FROM instances WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        return None if row is None else InstanceRow(*row)

    def put_instance(self, instance: InstanceRow) -> None:
        placeholders = ", ".join("?" for _ in _INSTANCE_COLUMNS)
        self._db.execute(
            f"INSERT OR REPLACE INTO instances ({', '.join(_INSTANCE_COLUMNS)}) VALUES ({placeholders})",
            tuple(getattr(instance, column) for column in _INSTANCE_COLUMNS),
        )

    def query_instances(
        self,
        *,
        runtime_status: Sequence[str] | None = None,
        created_from: float | None = None,
        created_to: float | None = None,
        top: int | None = None,
        id_prefix: str | None = None,
        after_id: str | None = None,
        by_id: bool = False,
    ) -> list[InstanceRow]:
        """Instances by created time, or ``by_id`` by instance id (one page of the management API, as an
        Azure Table query returns it), those whose id has ``id_prefix`` and comes after ``after_id``."""
        conditions: list[str] = []
        parameters: list[Any] = []
        if id_prefix:
            # A range, not LIKE: ids may hold '%' or '_', and the range uses the primary key's index.
            conditions.append("instance_id >= ? AND instance_id < ?")
            parameters.extend([id_prefix, id_prefix + "\U0010ffff"])
        if after_id is not None:
            conditions.append("instance_id > ?")
            parameters.append(after_id)
        if runtime_status:
            conditions.append(f"runtime_status IN ({', '.join('?' for _ in runtime_status)})")
            parameters.extend(runtime_status)
        if created_from is not None:
            conditions.append("created_time >= ?")
            parameters.append(created_from)
        if created_to is not None:
            conditions.append("created_time <= ?")
            parameters.append(created_to)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        limit = f"LIMIT {int(top)}" if top is not None else ""
        order = "instance_id" if by_id else "created_time, instance_id"
        rows = self._db.execute(
            f"SELECT {', '.join(_INSTANCE_COLUMNS)} FROM instances {where} ORDER BY {order} {limit}",
            parameters,
        ).fetchall()
        return [InstanceRow(*row) for row in rows]

    def delete_instance(self, instance_id: str) -> bool:
        self.reset_instance_state(instance_id)
        return self._db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,)).rowcount > 0

    def end_execution(self, instance_id: str) -> None:
        """Forget the current execution (continued as new): its history, the messages addressed to it and its
        activity work; messages for whatever execution is current stay."""
        self.clear_history(instance_id)
        self._db.execute(
            "DELETE FROM messages WHERE instance_id = ? AND execution_id IS NOT NULL", (instance_id,)
        )
        self._db.execute("DELETE FROM activities WHERE instance_id = ?", (instance_id,))

    def reset_instance_state(self, instance_id: str) -> None:
        """Forget history, inbox and activity work of an instance (replaced, purged)."""
        self.clear_history(instance_id)
        self._db.execute("DELETE FROM messages WHERE instance_id = ?", (instance_id,))
        self._db.execute("DELETE FROM activities WHERE instance_id = ?", (instance_id,))

    # -- history -------------------------------------------------------------------------------------------

    def load_history(self, instance_id: str) -> list[Event]:
        rows = self._db.execute(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY position", (instance_id,)
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def append_history(self, instance_id: str, events: Sequence[Event]) -> None:
        (length,) = self._db.execute(
            "SELECT COUNT(*) FROM history WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        self._db.executemany(
            "INSERT INTO history (instance_id, position, event) VALUES (?, ?, ?)",
            [(instance_id, length + offset, json.dumps(event)) for offset, event in enumerate(events)],
        )

    def clear_history(self, instance_id: str) -> None:
        self._db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))

    # -- orchestrator inbox --------------------------------------------------------------------------------

    def add_message(
        self,
        instance_id: str,
        execution_id: str | None,
        due: float,
        event: Event,
        *,
        timer_id: int | None = None,
    ) -> None:
        """Queue an event for the instance; `execution_id` None = whatever execution is current on
        delivery."""
        self._db.execute(
            "INSERT INTO messages (instance_id, execution_id, due, timer_id, event) VALUES (?, ?, ?, ?, ?)",
            (instance_id, execution_id, due, timer_id, json.dumps(event)),
        )

    def due_messages(self, instance_id: str, now: float) -> list[Message]:
        rows = self._db.execute(
            "SELECT id, execution_id, event FROM messages WHERE instance_id = ? AND due <= ? ORDER BY id",
            (instance_id, now),
        ).fetchall()
        return [Message(row[0], row[1], json.loads(row[2])) for row in rows]

    def delete_messages(self, message_ids: Sequence[int]) -> None:
        self._db.executemany(
            "DELETE FROM messages WHERE id = ?", [(message_id,) for message_id in message_ids]
        )

    def delete_instance_messages(self, instance_id: str) -> None:
        self._db.execute("DELETE FROM messages WHERE instance_id = ?", (instance_id,))

    def requeue_unbound_messages(self, instance_id: str) -> None:
        """Move the instance's messages for whatever execution is current behind all its other messages,
        keeping their order."""
        rows = self._db.execute(
            "SELECT id, due, timer_id, event FROM messages WHERE instance_id = ? AND execution_id IS NULL "
            "ORDER BY id",
            (instance_id,),
        ).fetchall()
        self.delete_messages([row[0] for row in rows])
        self._db.executemany(
            "INSERT INTO messages (instance_id, execution_id, due, timer_id, event) VALUES (?, ?, ?, ?, ?)",
            [(instance_id, None, *row[1:]) for row in rows],
        )

    def instances_with_due_messages(self, now: float) -> list[str]:
        rows = self._db.execute(
            "SELECT instance_id, MIN(id) AS first FROM messages WHERE due <= ? GROUP BY instance_id ORDER "
            "BY first",
            (now,),
        ).fetchall()
        return [row[0] for row in rows]

    def next_due(self) -> float | None:
        (due,) = self._db.execute("SELECT MIN(due) FROM messages").fetchone()
        return None if due is None else float(due)

    def next_due_excluding(self, instance_ids: Collection[str]) -> float | None:
        """Earliest due message of instances not in `instance_ids` (those running an episode right now)."""
        excluded = list(instance_ids)
        (due,) = self._db.execute(
            f"SELECT MIN(due) FROM messages WHERE instance_id NOT IN ({', '.join('?' for _ in excluded)})",
            excluded,
        ).fetchone()
        return None if due is None else float(due)

    # -- activity work items -------------------------------------------------------------------------------

    def add_activity(
        self, instance_id: str, execution_id: str, task_id: int, name: str, input_json: str
    ) -> None:
        self._db.execute(
            "INSERT INTO activities (instance_id, execution_id, task_id, name, input) VALUES (?, ?, ?, ?, ?)",
            (instance_id, execution_id, task_id, name, input_json),
        )

    def claim_activities(self, limit: int) -> list[ActivityWorkItem]:
        rows = self._db.execute(
            "SELECT id, instance_id, execution_id, task_id, name, input FROM activities WHERE status = "
            "'pending' ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        self._db.executemany(
            "UPDATE activities SET status = 'running' WHERE id = ?", [(row[0],) for row in rows]
        )
        return [ActivityWorkItem(*row) for row in rows]

    def finish_activity(self, activity_id: int) -> bool:
        """Remove a completed work item; False if it was removed meanwhile (instance replaced or purged)."""
        return self._db.execute("DELETE FROM activities WHERE id = ?", (activity_id,)).rowcount > 0

    def delete_pending_activities(self, instance_id: str) -> None:
        self._db.execute(
            "DELETE FROM activities WHERE instance_id = ? AND status = 'pending'", (instance_id,)
        )

    def requeue_running_activities(self) -> int:
        return self._db.execute("UPDATE activities SET status = 'pending' WHERE status = 'running'").rowcount

    def count_activities(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM activities").fetchone()
        return int(count)

    # -- entities ------------------------------------------------------------------------------------------

    def get_entity(self, instance_id: str) -> EntityRow | None:
        row = self._db.execute(
            "SELECT instance_id, entity_exists, state, failed_batches FROM entities WHERE instance_id = ?",
            (instance_id,),
        ).fetchone()
        return None if row is None else EntityRow(row[0], bool(row[1]), row[2], row[3])

    def put_entity(self, entity: EntityRow) -> None:
        """Store the entity; one that does not exist and owes no retry is removed, as the extension's
        implicit deletion removes an idle deleted entity."""
        if not entity.exists and not entity.failed_batches:
            self.delete_entity(entity.instance_id)
            return
        self._db.execute(
            "INSERT OR REPLACE INTO entities (instance_id, entity_exists, state, failed_batches) "
            "VALUES (?, ?, ?, ?)",
            (entity.instance_id, int(entity.exists), entity.state, entity.failed_batches),
        )

    def delete_entity(self, instance_id: str) -> None:
        self._db.execute("DELETE FROM entities WHERE instance_id = ?", (instance_id,))

    def postpone_messages(self, message_ids: Sequence[int], due: float) -> None:
        self._db.executemany(
            "UPDATE messages SET due = ? WHERE id = ?", [(due, message_id) for message_id in message_ids]
        )

    # -- clock ---------------------------------------------------------------------------------------------

    def record_time(self, now: float) -> None:
        self._db.execute(
            "INSERT INTO clock (id, latest) VALUES (0, ?) ON CONFLICT (id) DO UPDATE SET latest = "
            "MAX(latest, excluded.latest)",
            (now,),
        )

    def latest_recorded_time(self) -> float | None:
        """Epoch seconds of the latest recorded time. Timer messages are left out: they are due in the
        future, the other messages were queued at the time they are due; so are entity operations (ids
        starting with '@'), except a failed batch's, which wait for their retry."""
        (latest,) = self._db.execute(
            "SELECT MAX(t) FROM (SELECT latest AS t FROM clock "
            "UNION ALL SELECT MAX(last_updated_time) FROM instances "
            "UNION ALL SELECT MAX(due) FROM messages WHERE timer_id IS NULL AND instance_id NOT LIKE '@%')"
        ).fetchone()
        return None if latest is None else float(latest)
