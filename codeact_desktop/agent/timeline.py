"""A stored conversation as the user sees it: their messages, the model's words, each
action with its outputs, and notices. The window and the exports both read this."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..action_status import ActionStatus
from ..store.history import Conversation
from .actions import parse_reply
from .attachments import split_user_text

# Said under an answer the user stopped: live by the window, and again from the history
# (the message's meta "cancelled"), so a reopened answer does not just look cut short.
STOPPED = "Stopped."


@dataclass
class StoredOutput:
    """One output of an action as the store keeps it, ready to be shown again."""

    kind: str  # stdout | stderr | text | html | image | error
    text: str
    image: bytes | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class Entry:
    """One item of a conversation as shown: a message, an action with its outputs, or a notice."""

    type: str  # user | assistant | action | notice
    text: str = ""
    files: list[dict] = field(default_factory=list)  # user: the files sent with it
    error: bool = False  # notice
    action: dict | None = None  # action: its row
    outputs: list[StoredOutput] = field(default_factory=list)
    edited: bool = False  # action: the user changed the model's code before it ran

    @property
    def status(self) -> str:
        """An action's status; one still 'running' in the history was cut off by a crash."""
        status = (self.action or {}).get("status", "")
        return ActionStatus.CANCELLED.value if status == ActionStatus.RUNNING else status


def timeline(conversation: Conversation) -> list[Entry]:
    actions = {a["message_id"]: a for a in conversation.actions()}
    entries: list[Entry] = []
    for message in conversation.messages():
        kind, meta = message["kind"], json.loads(message["meta"] or "{}")
        if kind == "user":
            entries.append(user_entry(message))
        elif kind == "assistant":
            reply = parse_reply(message["content"])
            if reply.thought:
                entries.append(Entry("assistant", reply.thought))
            action = actions.get(message["id"])
            if action is not None:
                # The action's row holds the code that ran; the message, what the model wrote.
                entries.append(Entry("action", action["code"], action=action,
                                     outputs=_outputs(conversation, action["id"]),
                                     edited=code_edited(reply.code, action["code"])))
            if meta.get("cancelled"):
                entries.append(Entry("notice", STOPPED))
        elif kind == "notice":
            entries.append(Entry("notice", message["content"], error=bool(meta.get("error"))))
    return entries


def code_edited(proposed: str | None, ran: str) -> bool:
    """The code that ran is not the model's (an editor may add or drop a final newline)."""
    return proposed is not None and proposed.strip() != ran.strip()


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
