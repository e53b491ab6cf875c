"""The CodeAct loop (Wang et al., 2024; the seed's ``scripts/chat/demo.py``).

The model replies; if the reply holds an ``<execute>`` action, the code runs in the
conversation's kernel and the result goes back as a user turn ("Execution Output:"),
until the model answers without code or the action cap is reached.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import defaults
from ..action_status import ActionStatus
from ..app_log import safe_description
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
from .workspace import MAX_ENTRIES, MAX_LISTED_DEPTH
from .workspace_changes import WorkspaceChanges

# What failing to reach the network looks like from Python, pip and requests.
# Runs that ended in a failure the same code would meet again.
_FAILED_RUNS = (ActionStatus.ERROR, ActionStatus.TIMEOUT, ActionStatus.TIMEOUT_RESTARTED, ActionStatus.DIED)
_NETWORK_FAILURE = re.compile(r"Connection refused|Failed to establish a new connection|Network is unreachable|"
                              r"name resolution|Name or service not known|nodename nor servname|gaierror")

# What is logged: types, ids, counts and figures, never the conversation (see app_log.py).
log = logging.getLogger(__name__)


@dataclass
class AgentSettings:
    """How one turn runs: its limits and the model's sampling."""

    max_actions: int = defaults.MAX_ACTIONS
    action_timeout_s: float = defaults.ACTION_TIMEOUT_S
    max_new_tokens: int = defaults.MAX_NEW_TOKENS
    temperature: float = defaults.TEMPERATURE
    observation_chars: int = defaults.OBSERVATION_CHARS


@dataclass
class Approval:
    """A front end's answer to proposed code: run it (as proposed or edited) or not."""

    run: bool = True
    code: str | None = None  # edited code, or None to run it as proposed


@dataclass
class TurnRecord:
    """What happened in one user turn, for transcripts."""

    reason: str = ""
    actions_run: int = 0  # actions whose code went to the kernel
    model_calls: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


# (action_id, code, required) -> decision. ``required``: the kernel is not fully restricted,
# so a person must say yes; otherwise the front end may run it unasked (its own setting).
ApproveHook = Callable[[str, str, bool], Approval]


class CodeActAgent:
    """One conversation's CodeAct loop: sends the history to the model, runs the code it
    writes in the conversation's kernel (by the approval rule), records everything in the
    history and tells ``on_event`` what happens, on the calling thread. A front end runs
    ``send``/``regenerate``/``edit_last`` on a worker thread; each ends with a ``TurnDone``
    whatever fails, and the conversation goes on. The kernel's lifecycle events
    (``KernelState``) reach ``on_event`` too, on the kernel's threads."""

    def __init__(
        self,
        backend: ChatBackend | None,  # None until the model has loaded: set_backend() before a turn
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
        self.workspace_changes = WorkspaceChanges(conversation.workspace)  # what each action made
        self._warned_many_files = False
        if not conversation.messages():
            conversation.add_message("system", "system", prompt_text("system.txt"))
        # A lambda, so a listener set later (``agent.on_event = ...``) gets the kernel's events too.
        subscribe = getattr(kernel, "subscribe", None)
        self._unsubscribe = subscribe(lambda state: self.on_event(state)) if subscribe else None

    def set_backend(self, backend: ChatBackend) -> None:
        """The model for the next turns (a front end switched models)."""
        self.backend = backend

    def close(self) -> None:
        """Stops listening to the kernel (the conversation was closed or deleted); the
        kernel itself belongs to whoever started it."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.workspace_changes.close()  # its inotify watches are the user's, shared

    def cancel(self) -> None:
        """Stops generation within one token and interrupts running code."""
        self._cancel.set()

    def send(self, text: str, files: list[Path] = ()) -> TurnRecord:
        """Adds the user's message (and copies its files in), then runs the turn."""
        return self._turn(lambda record: self._send(record, text, files))

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
        def regenerate(record: TurnRecord) -> None:
            if not self.forget_answer():
                record.reason = "error"
                return
            self._answer(record)

        return self._turn(regenerate)

    def edit_last(self, text: str, files: list[Path] = ()) -> TurnRecord:
        """Replaces the last user message (and all after it) with a new one."""
        def edit(record: TurnRecord) -> None:
            self.forget_last_message()
            self._send(record, text, files)

        return self._turn(edit)

    # -- one turn, guarded -------------------------------------------------------------

    def _turn(self, body: Callable[[TurnRecord], None]) -> TurnRecord:
        """Runs one turn. Whatever raises in it (the model, the kernel, the history, a
        listener, the failure handling itself), the user gets a message in plain words,
        the log gets the traceback, and the last event is ``TurnDone``."""
        self._cancel.clear()
        record = TurnRecord()
        try:
            body(record)
        except Exception as exc:  # noqa: BLE001 - the one place a turn's failures end
            record.reason = "error"
            self._report_failure(exc)
        self._emit(ev.TurnDone(record.reason, record.actions_run))
        return record

    def _send(self, record: TurnRecord, text: str, files: list[Path]) -> None:
        conv = self.conversation
        text = well_formed(text)
        try:
            attached = copy_into_workspace(list(files), conv.workspace) if files else []
        except OSError as exc:
            # Nothing is recorded, so the user can fix the file and send again.
            log.warning("an attachment was not copied: %s", safe_description(exc))
            self._emit(ev.ErrorEvent(messages()["file_not_added"].format(why=exc)))
            record.reason = "error"
            return
        content = f"{text}\n\n{attachment_lines(attached)}" if attached else text
        meta = {"files": [a.to_json() for a in attached]} if attached else None
        conv.add_message("user", "user", content, meta)
        for a in attached:
            conv.add_file(a.name, a.size, "uploaded")
        self._answer(record)

    def _answer(self, record: TurnRecord) -> None:
        while not self._step(record):
            pass

    def _report_failure(self, exc: Exception) -> None:
        texts = messages()
        if isinstance(exc, (BackendError, ContextOverflow, KernelError)):
            # Written for the user already; the log keeps where it came from.
            log.warning("the turn ended: %s", safe_description(exc), exc_info=exc)
            error = text = str(exc)
        elif isinstance(exc, sqlite3.Error):
            log.error("the history failed during a turn", exc_info=exc)
            error = well_formed(f"{type(exc).__name__}: {exc}")
            why = texts["disk_full"] if "full" in str(exc).lower() else error
            text = texts["history_failed"].format(why=why)
        else:
            log.error("a turn failed", exc_info=exc)
            error = well_formed(f"{type(exc).__name__}: {exc}")
            text = texts["turn_failed"].format(error=error)
        try:
            self._close_open_actions(error)
            self.conversation.add_message("system", "notice", text, {"error": True})
        except Exception:  # noqa: BLE001 - the history itself failed: say it all the same
            log.error("the failure could not be recorded in the history", exc_info=True)
        self._emit(ev.ErrorEvent(text))

    def _emit(self, event) -> None:
        """For the events that end a turn: a listener that fails here is logged, so the
        turn still ends (a listener failing mid-turn ends the turn like any failure)."""
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001
            log.error("a listener failed on %s", type(event).__name__, exc_info=True)

    def _step(self, record: TurnRecord) -> bool:
        """One model reply and, if it holds an action, its run. True: the turn is done."""
        conv = self.conversation
        texts = messages()
        reply = self._generate(record)
        parsed = parse_reply(reply.text, reply.finish_reason)
        if reply.finish_reason == "cancelled":
            if parsed.thought:
                conv.add_message("assistant", "assistant", parsed.thought, {"cancelled": True})
            record.reason = "cancelled"
            return True
        message_id = conv.add_message("assistant", "assistant", parsed.history_text)
        self.on_event(ev.ReplyDone(parsed.history_text, reply.finish_reason, reply.to_json()))
        unfit = self._hint_if_model_unfit(reply.finish_reason)
        if parsed.code is None:
            # A sentence stopping mid-word needs a reason, unless the model is known not to fit.
            if reply.finish_reason == "length" and not unfit:
                self._notice(texts["reply_cut_off"].format(max_tokens=self.settings.max_new_tokens))
            record.reason = "answered"
            return True
        if record.actions_run >= self.settings.max_actions:
            self._finish_unrun(message_id, parsed, ActionStatus.OVER_LIMIT, record)
            record.reason = "action_limit"
            self._notice(texts["action_limit_stop"].format(limit=self.settings.max_actions))
            return True
        if self._repeats_a_failure(parsed.code, record):
            self._finish_unrun(message_id, parsed, ActionStatus.REPEATED, record)
            record.reason = "repeated"
            self._notice(texts["repeated_stop"])
            return True
        observation = self._act(message_id, parsed, record)
        record.actions_run += 1
        if record.actions_run >= self.settings.max_actions:
            observation += texts["action_limit"].format(limit=self.settings.max_actions)
        conv.add_message("user", "observation", observation)
        if self._cancel.is_set():
            record.reason = "cancelled"
            return True
        return False

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
            return self._finish_unrun(message_id, parsed, ActionStatus.CUT_OFF, record, action_id)
        decision = self._decide(action_id, parsed.code)
        if not decision.run:
            return self._finish_unrun(message_id, parsed, ActionStatus.SKIPPED, record, action_id)
        code = decision.code if decision.code is not None else parsed.code
        conv.start_action(action_id, code)
        self.on_event(ev.ActionStarted(action_id, code))
        self.workspace_changes.before_action()
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
        status = ActionStatus(result.status)
        produced = [(path, size) for path, size in self.workspace_changes.after_action()
                    if path.count("/") < MAX_LISTED_DEPTH]
        if not self.workspace_changes.complete and not self._warned_many_files:
            self._warned_many_files = True
            self._notice(messages()["many_files"].format(limit=f"{MAX_ENTRIES:,}"))
        conv.add_files(produced, "produced", action_id)
        body = observation_text(result.items, self.settings.observation_chars)
        status_line = {
            ActionStatus.TIMEOUT: texts["timeout"].format(seconds=self.settings.action_timeout_s),
            ActionStatus.TIMEOUT_RESTARTED: texts["timeout_restarted"].format(seconds=self.settings.action_timeout_s),
            ActionStatus.DIED: texts["kernel_died"].format(reason=result.detail),
            ActionStatus.CANCELLED: texts["cancelled"],
        }.get(status, "")
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
        conv.finish_action(action_id, status, observation, result.seconds, result.detail)
        files = [p for p, _ in produced]
        record.files += files
        record.actions.append({
            "id": action_id, "code": code, "status": status, "observation": observation,
            "seconds": round(result.seconds, 3), "outputs": items_json, "files": files,
        })
        self.on_event(ev.ActionFinished(action_id, status, observation, result.seconds, files))
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

    @staticmethod
    def _repeats_a_failure(code: str, record: TurnRecord) -> bool:
        """The code of this turn's last action, which failed: run again it fails the same way
        (a weak model looped so six times a message, 15 to 47 s each)."""
        last = record.actions[-1] if record.actions else None
        return (last is not None and last["status"] in _FAILED_RUNS
                and last["code"].strip() == code.strip())

    def _finish_unrun(self, message_id, parsed, status: ActionStatus, record, action_id=None) -> str:
        texts = messages()
        if action_id is None:
            action_id = self.conversation.add_action(message_id, parsed.code)
            self.on_event(ev.ActionProposed(action_id, parsed.code))
        # cut_off, skipped, over_limit: the status names its text
        observation = texts["observation_prefix"] + texts[status.value].format(max_tokens=self.settings.max_new_tokens)
        self.conversation.finish_action(action_id, status, observation, 0.0)
        record.actions.append({"id": action_id, "code": parsed.code, "status": status,
                               "observation": observation, "seconds": 0.0, "outputs": [], "files": []})
        self.on_event(ev.ActionFinished(action_id, status, observation, 0.0))
        return observation

    def _close_open_actions(self, error: str) -> None:
        """An action cut short by a failure of the app's own is marked as such, and the model
        reads that it did not finish, as after any other action."""
        texts = messages()
        for action in self.conversation.actions():
            if action["status"] in (ActionStatus.PROPOSED, ActionStatus.RUNNING):
                observation = texts["observation_prefix"] + texts["app_failed_observation"].format(error=error)
                self.conversation.finish_action(action["id"], ActionStatus.ERROR, observation, 0.0, error)
                self.conversation.add_message("user", "observation", observation)
                self._emit(ev.ActionFinished(action["id"], ActionStatus.ERROR, observation, 0.0))

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
