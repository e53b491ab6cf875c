"""The CodeAct loop (Wang et al., 2024; the seed's ``scripts/chat/demo.py``).

The model replies; if the reply holds an ``<execute>`` action, the code runs in the
conversation's kernel and the result goes back as a user turn ("Execution Output:"),
until the model answers without code or the action cap is reached.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..kernel.observation import observation_text
from ..kernel.conversation_kernel import KernelError, ConversationKernel
from ..llm.base import BackendError, ChatBackend, GenerationParams, GenerationResult
from ..resources import messages, prompt_text
from ..store.history import Conversation
from ..visible_text import well_formed
from . import events as ev
from .actions import ParsedReply, parse_reply
from .attachments import attachment_lines, copy_into_workspace
from .context import ContextOverflow, fit_to_context
from .missing_module import module_note
from .model_fitness import unfit_sign
from .timeline import code_edited
from .workspace import MAX_ENTRIES, changed_files, snapshot

# What failing to reach the network looks like from Python, pip and requests.
_NETWORK_FAILURE = re.compile(r"Connection refused|Failed to establish a new connection|Network is unreachable|"
                              r"name resolution|Name or service not known|nodename nor servname|gaierror")


@dataclass
class AgentSettings:
    max_actions: int = 6  # the seed used 3; self-debugging often needs a few more
    action_timeout_s: float = 60.0
    max_new_tokens: int = 512
    temperature: float = 0.0
    observation_chars: int = 4000


@dataclass
class Approval:
    run: bool = True
    code: str | None = None  # edited code, or None to run it as proposed


@dataclass
class TurnRecord:
    """What happened in one user turn, for transcripts."""

    reason: str = ""
    model_calls: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


# (action_id, code, required) -> decision. ``required``: the kernel is not fully restricted,
# so a person must say yes; otherwise the front end may run it unasked (its own setting).
ApproveHook = Callable[[str, str, bool], Approval]


class CodeActAgent:
    def __init__(
        self,
        backend: ChatBackend,
        kernel: ConversationKernel,
        conversation: Conversation,
        settings: AgentSettings | None = None,
        on_event: Callable[[object], None] | None = None,
        approve: ApproveHook | None = None,
    ):
        self.backend = backend
        self.kernel = kernel
        self.conversation = conversation
        self.settings = settings or AgentSettings()
        self.on_event = on_event or (lambda event: None)
        self.approve = approve
        self._cancel = threading.Event()
        self._warned_unrestricted = False
        self._workspace_seen = None  # the workspace after the last action: the next one's "before"
        self._warned_many_files = False
        if not conversation.messages():
            conversation.add_message("system", "system", prompt_text("system.txt"))

    def cancel(self) -> None:
        """Stops generation within one token and interrupts running code."""
        self._cancel.set()

    def send(self, text: str, files: list[Path] = ()) -> TurnRecord:
        """Adds the user's message (and copies its files in), then runs the turn."""
        self._cancel.clear()
        conv = self.conversation
        text = well_formed(text)
        try:
            attached = copy_into_workspace(list(files), conv.workspace) if files else []
        except OSError as exc:
            # Nothing is recorded, so the user can fix the file and send again.
            self.on_event(ev.ErrorEvent(f"Could not add the file: {exc}"))
            self.on_event(ev.TurnDone("error", 0))
            return TurnRecord(reason="error")
        content = f"{text}\n\n{attachment_lines(attached)}" if attached else text
        meta = {"files": [a.to_json() for a in attached]} if attached else None
        conv.add_message("user", "user", content, meta)
        for a in attached:
            conv.add_file(a.name, a.size, "uploaded")
        return self._run_turn()

    def forget_answer(self) -> bool:
        """Drops everything after the last user message; False when there is none."""
        last = self.conversation.last_user_message()
        if last is not None:
            self.conversation.truncate_from(last["id"] + 1)
        return last is not None

    def forget_last_message(self) -> None:
        """Drops the last user message and everything after it."""
        last = self.conversation.last_user_message()
        if last is not None:
            self.conversation.truncate_from(last["id"])

    def regenerate(self) -> TurnRecord:
        """Forgets the answer to the last user message and answers it again."""
        self._cancel.clear()
        if not self.forget_answer():
            self.on_event(ev.TurnDone("error", 0))
            return TurnRecord(reason="error")
        return self._run_turn()

    def edit_last(self, text: str, files: list[Path] = ()) -> TurnRecord:
        """Replaces the last user message (and all after it) with a new one."""
        self.forget_last_message()
        return self.send(text, files)

    def _run_turn(self) -> TurnRecord:
        record = TurnRecord()
        actions_run = 0
        while True:
            try:
                actions_run, done = self._step(record, actions_run)
            except (BackendError, ContextOverflow, KernelError) as exc:
                self._notice(str(exc), error=True)
                record.reason = "error"
                break
            except Exception as exc:  # noqa: BLE001 - anything else still ends the turn, with a notice
                error = well_formed(f"{type(exc).__name__}: {exc}")
                text = messages()["turn_failed"].format(error=error)
                try:
                    self._close_open_actions(error)
                    self._notice(text, error=True)
                except Exception:  # noqa: BLE001 - the history itself failed: say it all the same
                    self.on_event(ev.ErrorEvent(text))
                record.reason = "error"
                break
            if done:
                break
        self.on_event(ev.TurnDone(record.reason, actions_run))
        return record

    def _step(self, record: TurnRecord, actions_run: int) -> tuple[int, bool]:
        """One model reply and, if it holds an action, its run. Returns (actions, done)."""
        conv = self.conversation
        reply = self._generate(record)
        parsed = parse_reply(reply.text, reply.finish_reason)
        if reply.finish_reason == "cancelled":
            if parsed.thought:
                conv.add_message("assistant", "assistant", parsed.thought, {"cancelled": True})
            record.reason = "cancelled"
            return actions_run, True
        message_id = conv.add_message("assistant", "assistant", parsed.history_text)
        self.on_event(ev.ReplyDone(parsed.history_text, reply.finish_reason, reply.to_json()))
        unfit = self._hint_if_model_unfit(reply.finish_reason)
        if parsed.code is None:
            # A sentence stopping mid-word needs a reason, unless the model is known not to fit.
            if reply.finish_reason == "length" and not unfit:
                self._notice(messages()["reply_cut_off"].format(max_tokens=self.settings.max_new_tokens))
            record.reason = "answered"
            return actions_run, True
        if actions_run >= self.settings.max_actions:
            self._finish_unrun(message_id, parsed, "over_limit", record)
            record.reason = "action_limit"
            self._notice(f"Stopped: the limit of {self.settings.max_actions} code runs per message was reached.")
            return actions_run, True
        observation = self._act(message_id, parsed, record)
        actions_run += 1
        if actions_run >= self.settings.max_actions:
            observation += messages()["action_limit"].format(limit=self.settings.max_actions)
        conv.add_message("user", "observation", observation)
        if self._cancel.is_set():
            record.reason = "cancelled"
            return actions_run, True
        return actions_run, False

    def _generate(self, record: TurnRecord) -> GenerationResult:
        msgs, kinds = self.conversation.model_messages()
        fitted = fit_to_context(
            msgs, kinds, self.backend.count_tokens, self.backend.info.n_ctx, self.settings.max_new_tokens
        )
        if fitted.shortened or fitted.dropped:
            self._notice(messages()["context_shortened"].format(
                n_ctx=self.backend.info.n_ctx, what=fitted.summary()))
        params = GenerationParams(
            max_tokens=self.settings.max_new_tokens, temperature=self.settings.temperature
        )
        on_piece = lambda piece: self.on_event(ev.TextPiece(well_formed(piece)))  # noqa: E731
        on_progress = lambda done, total: self.on_event(ev.ModelWorking("reading", done, total))  # noqa: E731
        # A long prompt can take minutes on a CPU before the first word: say it is being read.
        self.on_event(ev.ModelWorking("reading"))
        result = self.backend.generate(fitted.messages, params, on_piece, self._cancel, on_progress=on_progress)
        result.text = well_formed(result.text)  # a server may send lone surrogates
        record.model_calls.append({"messages": fitted.messages, "result": result.to_json()})
        return result

    def _act(self, message_id: int, parsed: ParsedReply, record: TurnRecord) -> str:
        texts = messages()
        conv = self.conversation
        action_id = conv.add_action(message_id, parsed.code)
        self.on_event(ev.ActionProposed(action_id, parsed.code))
        if not parsed.runnable:
            return self._finish_unrun(message_id, parsed, "cut_off", record, action_id)
        decision = self._decide(action_id, parsed.code)
        if not decision.run:
            return self._finish_unrun(message_id, parsed, "skipped", record, action_id)
        code = decision.code if decision.code is not None else parsed.code
        conv.start_action(action_id, code)
        self.on_event(ev.ActionStarted(action_id, code))
        before = self._workspace_seen or snapshot(conv.workspace)
        items_json: list[dict] = []

        def on_item(item):
            conv.add_output(action_id, item)
            items_json.append(item.to_json())
            self.on_event(ev.OutputAdded(action_id, item))

        result = self.kernel.execute(
            code,
            timeout=self.settings.action_timeout_s,
            cancel=self._cancel,
            on_item=on_item,
            on_stream=lambda name, text: self.on_event(ev.OutputStream(action_id, name, text)),
        )
        self._workspace_seen = after = snapshot(conv.workspace)
        produced = changed_files(before, after)
        if not after.complete and not self._warned_many_files:
            self._warned_many_files = True
            self._notice(messages()["many_files"].format(limit=f"{MAX_ENTRIES:,}"))
        for path, size in produced:
            conv.add_file(path, size, "produced", action_id)
        body = observation_text(result.items, self.settings.observation_chars)
        status_line = {
            "timeout": texts["timeout"].format(seconds=self.settings.action_timeout_s),
            "timeout_restarted": texts["timeout_restarted"].format(seconds=self.settings.action_timeout_s),
            "died": texts["kernel_died"].format(reason=result.detail),
            "cancelled": texts["cancelled"],
        }.get(result.status, "")
        network_failed = not self.kernel.network and bool(_NETWORK_FAILURE.search(body))
        if network_failed:
            status_line = "\n".join(part for part in (status_line, texts["network_off"]) if part)
        # A module that is not installed: say so, and name what is installed instead.
        note = module_note(result.items, code, self.kernel.network, network_failed)
        body = "\n".join(part for part in (body, note, status_line) if part) or texts["no_output"]
        if code_edited(parsed.code, code):
            # The history keeps the model's own code: tell it what ran instead.
            body = texts["edited_by_user"].format(code=code) + body
        observation = texts["observation_prefix"] + body
        conv.finish_action(action_id, result.status, observation, result.seconds, result.detail)
        files = [p for p, _ in produced]
        record.files += files
        record.actions.append({
            "id": action_id, "code": code, "status": result.status, "observation": observation,
            "seconds": round(result.seconds, 3), "outputs": items_json, "files": files,
        })
        self.on_event(ev.ActionFinished(action_id, result.status, observation, result.seconds, files))
        return observation

    def _decide(self, action_id: str, code: str) -> Approval:
        """The approval rule, the same for every front end: nothing runs before the kernel's
        restrictions are known, and where something is not isolated, only with a yes."""
        self.kernel.wait_ready()
        missing = self.kernel.sandbox.missing
        if missing and not self._warned_unrestricted:
            self._warned_unrestricted = True
            self._notice(messages()["unrestricted"].format(why=self.kernel.sandbox.why_not()), error=True)
        if self.approve is None:
            return Approval(run=not missing)
        return self.approve(action_id, code, bool(missing))

    def _finish_unrun(self, message_id, parsed, status, record, action_id=None) -> str:
        texts = messages()
        if action_id is None:
            action_id = self.conversation.add_action(message_id, parsed.code)
            self.on_event(ev.ActionProposed(action_id, parsed.code))
        body = {
            "cut_off": texts["cut_off"].format(max_tokens=self.settings.max_new_tokens),
            "skipped": texts["skipped"],
            "over_limit": "[Not run: the code-run limit for this message was reached.]",
        }[status]
        observation = texts["observation_prefix"] + body
        self.conversation.finish_action(action_id, status, observation, 0.0)
        record.actions.append({"id": action_id, "code": parsed.code, "status": status,
                               "observation": observation, "seconds": 0.0, "outputs": [], "files": []})
        self.on_event(ev.ActionFinished(action_id, status, observation, 0.0))
        return observation

    def _close_open_actions(self, error: str) -> None:
        """An action cut short by a failure of the app's own is marked as such, and the model
        reads that it did not finish, as after any other action."""
        for action in self.conversation.actions():
            if action["status"] in ("proposed", "running"):
                observation = messages()["observation_prefix"] + f"[The app failed while handling this code: {error}]"
                self.conversation.finish_action(action["id"], "error", observation, 0.0, error)
                self.conversation.add_message("user", "observation", observation)
                self.on_event(ev.ActionFinished(action["id"], "error", observation, 0.0))

    def _hint_if_model_unfit(self, finish_reason: str) -> bool:
        """Once per conversation (the notice is stored), a model that cannot act on
        requests is named as such, with the one made for this app. True: it was."""
        conv = self.conversation
        stored = conv.messages()
        if any(m["kind"] == "notice" and json.loads(m["meta"] or "{}").get("model_unfit") for m in stored):
            return True
        sign = unfit_sign(stored, finish_reason)
        if sign:
            self._notice(messages()["model_cannot_act"], model_unfit=sign)
        return bool(sign)

    def _notice(self, text: str, error: bool = False, **meta) -> None:
        self.conversation.add_message("system", "notice", text, {"error": error, **meta})
        self.on_event(ev.ErrorEvent(text) if error else ev.Notice(text))
