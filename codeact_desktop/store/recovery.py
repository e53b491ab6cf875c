"""After the app was killed: turns it left unfinished are marked, so the conversation
reads well to the user and to the model, and goes on from there.

An action still "proposed" or "running" whose owning process is gone was cut off by a
kill. It becomes "interrupted"; the model gets the observation it would have had (the
code did not finish), and the user a notice. Another running instance's actions are
left alone: their owner is alive. (The files a kill cut off mid-copy are the agent's
business: ``engine.recover_after_stop`` removes them before calling this.)
"""

from __future__ import annotations

import time

from ..action_status import ActionStatus
from ..process_ids import process_running
from ..resources import messages
from .history import HistoryStore

_UNFINISHED = (ActionStatus.PROPOSED.value, ActionStatus.RUNNING.value)


def recover_interrupted(store: HistoryStore) -> int:
    """Marks actions cut off by a kill; returns how many turns were recovered."""
    rows = store.query("SELECT id, conversation_id, message_id, owner FROM actions"
                       " WHERE status IN (?, ?) ORDER BY conversation_id, message_id", _UNFINISHED)
    cut = [r for r in rows if not process_running(r["owner"])]
    if not cut:
        return 0
    texts = messages()
    observation = texts["observation_prefix"] + texts["app_stopped_observation"]
    now = time.time()
    with store.transaction() as db:
        for row in cut:
            db.execute("UPDATE actions SET status = ?, observation = ?, detail = ?, finished = ? WHERE id = ?",
                       (ActionStatus.INTERRUPTED.value, observation, "the app was killed", now, row["id"]))
        for conv_id in dict.fromkeys(r["conversation_id"] for r in cut):
            last = db.execute("SELECT kind FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT 1",
                              (conv_id,)).fetchone()
            # The model reads an observation after its action, as after any other.
            if last is not None and last[0] == "assistant":
                db.execute("INSERT INTO messages (conversation_id, role, kind, content, created)"
                           " VALUES (?, 'user', 'observation', ?, ?)", (conv_id, observation, now))
            db.execute("INSERT INTO messages (conversation_id, role, kind, content, created)"
                       " VALUES (?, 'system', 'notice', ?, ?)", (conv_id, texts["app_stopped_notice"], now))
    return len({r["conversation_id"] for r in cut})
