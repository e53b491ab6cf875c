"""The conversation history in SQLite (WAL).

Every completed thing (a message, an action's start and end, each output item, a
produced file) is committed when it completes, so killing the app loses at most the
reply still streaming. Images the code displayed are kept in the database, not in the
workspace: the kernel can write there, and could replace one with a link to any file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import no_follow
from ..action_status import ActionStatus
from ..kernel.outputs import OutputItem, item_from_output

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    workspace TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    network INTEGER NOT NULL DEFAULT 0  -- may this conversation's code use the network
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL,          -- system | user | assistant
    kind TEXT NOT NULL,          -- system | user | assistant | observation | notice
    content TEXT NOT NULL,
    created REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    message_id INTEGER REFERENCES messages(id),
    code TEXT NOT NULL,
    status TEXT NOT NULL,        -- proposed | running | ok | error | timeout | ...
    observation TEXT,
    detail TEXT,
    started REAL,
    finished REAL,
    seconds REAL,
    owner INTEGER                -- the process that runs it: a dead owner means the app was killed
);
CREATE TABLE IF NOT EXISTS outputs (
    id INTEGER PRIMARY KEY,
    action_id TEXT NOT NULL REFERENCES actions(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    mime TEXT NOT NULL,
    text TEXT,
    path TEXT,                   -- images of histories before 'data': relative to the workspace
    meta TEXT NOT NULL DEFAULT '{}',
    data BLOB                    -- images of histories before meta's 'output' (the whole nbformat output)
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    action_id TEXT REFERENCES actions(id),
    origin TEXT NOT NULL,        -- uploaded | produced
    path TEXT NOT NULL,          -- relative to the workspace
    size INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_conversation ON files(conversation_id, id);
CREATE INDEX IF NOT EXISTS files_by_path ON files(conversation_id, path);
"""

OUTPUTS_DIR = ".codeact"  # inside each workspace: images of older histories
MAX_IMAGE_BYTES = 64 << 20  # an older history's image file read back, at most


class HistoryStore:
    """The app's one SQLite database of conversations: each message, action, output and
    produced file, committed as it completes; safe to share between threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: an app crash loses nothing committed; only power loss can.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        # Columns added after a history may have been written: the network switch, action owners.
        for table, column, kind in (("conversations", "network", "INTEGER NOT NULL DEFAULT 0"),
                                    ("actions", "owner", "INTEGER"), ("outputs", "data", "BLOB")):
            if column not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    @contextmanager
    def transaction(self):
        """All statements inside commit together or not at all."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._db.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def create_conversation(
        self, workspace_root: Path, title: str = "New conversation", workspace: Path | None = None
    ) -> "Conversation":
        """A new conversation with its own workspace folder (or the one given)."""
        conv_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        workspace = Path(workspace).resolve() if workspace else Path(workspace_root) / conv_id
        workspace.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.execute(
            "INSERT INTO conversations (id, title, workspace, created, updated) VALUES (?, ?, ?, ?, ?)",
            (conv_id, title, str(workspace), now, now),
        )
        return Conversation(self, conv_id, workspace)

    def open_conversation(self, conv_id: str) -> "Conversation":
        rows = self.query("SELECT workspace FROM conversations WHERE id = ?", (conv_id,))
        if not rows:
            raise KeyError(f"no conversation {conv_id}")
        return Conversation(self, conv_id, Path(rows[0]["workspace"]))

    def delete_conversation(self, conv_id: str) -> None:
        """Removes a conversation and all it holds from the history (not its folder)."""
        with self.transaction() as db:
            for sql in (
                "DELETE FROM files WHERE conversation_id = ?",
                "DELETE FROM outputs WHERE action_id IN (SELECT id FROM actions WHERE conversation_id = ?)",
                "DELETE FROM actions WHERE conversation_id = ?",
                "DELETE FROM messages WHERE conversation_id = ?",
                "DELETE FROM conversations WHERE id = ?",
            ):
                db.execute(sql, (conv_id,))

    def list_conversations(self) -> list[dict]:
        return self.query("SELECT * FROM conversations ORDER BY updated DESC")

    def integrity_ok(self) -> bool:
        return self.query("PRAGMA integrity_check")[0]["integrity_check"] == "ok"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def search_conversations(self, needle: str, limit: int = 200) -> list[dict]:
        """Conversations whose title or one of whose user or assistant messages holds
        ``needle`` (ASCII case ignored), newest first: one query, for the sidebar's search."""
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self.query(
            "SELECT * FROM conversations AS c WHERE c.title LIKE ?1 ESCAPE '\\' OR EXISTS ("
            " SELECT 1 FROM messages AS m WHERE m.conversation_id = c.id AND m.kind IN ('user', 'assistant')"
            " AND m.content LIKE ?1 ESCAPE '\\') ORDER BY c.updated DESC LIMIT ?2", (pattern, limit))


@dataclass
class Conversation:
    """One conversation in the store: what is written to it and read back, by id."""

    store: HistoryStore
    id: str
    workspace: Path

    def _touch(self) -> None:
        self.store.execute("UPDATE conversations SET updated = ? WHERE id = ?", (time.time(), self.id))

    def set_title(self, title: str) -> None:
        self.store.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, self.id))

    def title(self) -> str:
        rows = self.store.query("SELECT title FROM conversations WHERE id = ?", (self.id,))
        return rows[0]["title"] if rows else ""

    def network_allowed(self) -> bool:
        rows = self.store.query("SELECT network FROM conversations WHERE id = ?", (self.id,))
        return bool(rows and rows[0]["network"])

    def set_network_allowed(self, allowed: bool) -> None:
        self.store.execute("UPDATE conversations SET network = ? WHERE id = ?", (int(allowed), self.id))

    def add_message(self, role: str, kind: str, content: str, meta: dict | None = None) -> int:
        cur = self.store.execute(
            "INSERT INTO messages (conversation_id, role, kind, content, created, meta)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (self.id, role, kind, content, time.time(), json.dumps(meta or {})),
        )
        self._touch()
        return cur.lastrowid

    def messages(self) -> list[dict]:
        return self.store.query(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (self.id,)
        )

    def last_user_message(self) -> dict | None:
        rows = self.store.query(
            "SELECT * FROM messages WHERE conversation_id = ? AND kind = 'user' ORDER BY id DESC LIMIT 1",
            (self.id,))
        return rows[0] if rows else None

    def truncate_from(self, message_id: int) -> None:
        """Forgets the message and everything after it (regenerate, edit and resend).

        Files the removed actions wrote stay on disk, as the kernel's state does.
        """
        doomed = "SELECT id FROM actions WHERE conversation_id = ? AND message_id >= ?"
        args = (self.id, message_id)
        with self.store.transaction() as db:
            db.execute(f"DELETE FROM files WHERE action_id IN ({doomed})", args)
            db.execute(f"DELETE FROM outputs WHERE action_id IN ({doomed})", args)
            db.execute("DELETE FROM actions WHERE conversation_id = ? AND message_id >= ?", args)
            db.execute("DELETE FROM messages WHERE conversation_id = ? AND id >= ?", args)

    def model_messages(self) -> tuple[list[dict], list[str]]:
        """The messages the model sees, and the kind of each."""
        rows = [m for m in self.messages() if m["kind"] != "notice"]
        return [{"role": m["role"], "content": m["content"]} for m in rows], [m["kind"] for m in rows]

    def add_action(self, message_id: int, code: str) -> str:
        action_id = uuid.uuid4().hex[:12]
        self.store.execute(
            "INSERT INTO actions (id, conversation_id, message_id, code, status, owner)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (action_id, self.id, message_id, code, ActionStatus.PROPOSED.value, os.getpid()),
        )
        return action_id

    def start_action(self, action_id: str, code: str) -> None:
        self.store.execute(
            "UPDATE actions SET status = ?, code = ?, started = ? WHERE id = ?",
            (ActionStatus.RUNNING.value, code, time.time(), action_id),
        )

    def finish_action(self, action_id: str, status: ActionStatus | str, observation: str, seconds: float,
                      detail: str = "") -> None:
        self.store.execute(
            "UPDATE actions SET status = ?, observation = ?, detail = ?, finished = ?, seconds = ? WHERE id = ?",
            (ActionStatus(status).value, observation, detail, time.time(), seconds, action_id),
        )

    def add_output(self, action_id: str, item: OutputItem) -> None:
        """Stores one completed output item whole: its nbformat output (every type the
        kernel sent) in ``meta["output"]``, beside the shown text older readers use. An
        image's bytes live only in that output, not again in ``data``."""
        meta = {k: v for k, v in item.to_json().items() if k not in ("kind", "mime", "text")}
        meta["output"] = item.to_output()
        self.store.execute(
            "INSERT INTO outputs (action_id, kind, mime, text, meta, data) VALUES (?, ?, ?, ?, ?, ?)",
            (action_id, item.kind, item.mime, item.text if item.kind != "image" else item.plain, json.dumps(meta),
             None),
        )

    def output_image(self, row: dict) -> bytes | None:
        """An image output's bytes: from its stored output; rows of older versions kept them
        in ``data``, and older still as files in the workspace, read back only as a plain
        file there, never through a link."""
        if row.get("data") is not None:
            return bytes(row["data"])
        try:
            output = json.loads(row.get("meta") or "{}").get("output")
        except (ValueError, AttributeError):
            output = None
        if output is not None:
            item = item_from_output(output)
            return item.data if item is not None and item.kind == "image" else None
        if not row.get("path"):
            return None
        try:
            return no_follow.read_file(self.workspace, row["path"], MAX_IMAGE_BYTES)
        except OSError:
            return None

    def add_file(self, path: str, size: int, origin: str, action_id: str | None = None) -> None:
        self.add_files([(path, size)], origin, action_id)

    def add_files(self, files: list[tuple[str, int]], origin: str, action_id: str | None = None) -> None:
        """(path, size) each, in one commit: an action may write 20,000 files."""
        now = time.time()
        with self.store.transaction() as db:
            db.executemany(
                "INSERT INTO files (conversation_id, action_id, origin, path, size, created) VALUES (?, ?, ?, ?, ?, ?)",
                [(self.id, action_id, origin, path, size, now) for path, size in files],
            )

    def actions(self) -> list[dict]:
        return self.store.query(
            "SELECT * FROM actions WHERE conversation_id = ? ORDER BY rowid", (self.id,)
        )

    def outputs(self, action_id: str) -> list[dict]:
        return self.store.query("SELECT * FROM outputs WHERE action_id = ? ORDER BY id", (action_id,))

    def files(self) -> list[dict]:
        return self.store.query("SELECT * FROM files WHERE conversation_id = ? ORDER BY id", (self.id,))

    def latest_files(self, limit: int) -> tuple[list[dict], int]:
        """The latest record of each path, newest first, at most ``limit`` of them; and how
        many paths there are. Code that writes 20,000 new names an action made every row a
        cost of every turn and every start. Read newest first, a page at a time, until
        ``limit`` paths are found: usually the first page."""
        latest: dict[str, dict] = {}
        before, page = 1 << 62, 2 * limit  # ids below ``before``: every row, the first time
        while len(latest) < limit:
            rows = self.store.query(
                "SELECT * FROM files WHERE conversation_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (self.id, before, page))
            for row in rows:
                latest.setdefault(row["path"], row)
            if len(rows) < page:
                break
            before = rows[-1]["id"]
        count = self.store.query("SELECT COUNT(DISTINCT path) AS n FROM files WHERE conversation_id = ?", (self.id,))
        return list(latest.values())[:limit], count[0]["n"]
