"""A stored conversation as the user sees it: their messages, the model's words, each
action with its outputs, and notices. The window and the exports both read this."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..store.history import Conversation
from .actions import parse_reply
from .attachments import split_user_text


@dataclass
class StoredOutput:
    kind: str  # stdout | stderr | text | html | image | error
    text: str
    image: bytes | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class Entry:
    type: str  # user | assistant | action | notice
    text: str = ""
    files: list[dict] = field(default_factory=list)  # user: the files sent with it
    error: bool = False  # notice
    action: dict | None = None  # action: its row
    outputs: list[StoredOutput] = field(default_factory=list)

    @property
    def status(self) -> str:
        """An action's status; one still 'running' in the history was cut off by a crash."""
        status = (self.action or {}).get("status", "")
        return "cancelled" if status == "running" else status


def timeline(conversation: Conversation) -> list[Entry]:
    actions = {a["message_id"]: a for a in conversation.actions()}
    entries: list[Entry] = []
    for message in conversation.messages():
        kind, meta = message["kind"], json.loads(message["meta"] or "{}")
        if kind == "user":
            entries.append(user_entry(message))
        elif kind == "assistant":
            thought = parse_reply(message["content"]).thought
            if thought:
                entries.append(Entry("assistant", thought))
            action = actions.get(message["id"])
            if action is not None:
                entries.append(Entry("action", action["code"], action=action,
                                     outputs=_outputs(conversation, action["id"])))
        elif kind == "notice":
            entries.append(Entry("notice", message["content"], error=bool(meta.get("error"))))
    return entries


def user_entry(message: dict) -> Entry:
    """A stored user message: the user's own words and the files sent with it."""
    meta = json.loads(message["meta"] or "{}")
    return Entry("user", split_user_text(message["content"]), files=meta.get("files", []))


def _outputs(conversation: Conversation, action_id: str) -> list[StoredOutput]:
    outputs = []
    for row in conversation.outputs(action_id):
        image = conversation.output_image(row) if row["kind"] == "image" else None
        outputs.append(StoredOutput(row["kind"], row["text"] or "", image, json.loads(row["meta"] or "{}")))
    return outputs
