"""``codeact-desktop run``: one request, streamed to the terminal, transcript as JSON."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time

from .agent import events as ev
from .agent.loop import AgentSettings, Approval, CodeActAgent
from .engine import open_backend, recover_after_stop, start_kernel
from .kernel.conversation_kernel import KernelError
from .kernel.state import KernelState, KernelStatus
from .llm.base import BackendError
from .paths import AppPaths
from .store.history import HistoryStore
from .code_warnings import code_warnings
from .visible_text import for_code_view, for_terminal, visible_name, well_formed

log = logging.getLogger(__name__)


class TerminalView:
    """Prints the agent's events as they come."""

    def __init__(self, out=None):
        self.out = out or sys.stdout  # at construction, not at import: a test's capture, a redirect
        self._at_line_start = True

    def write(self, text: str) -> None:
        if text:
            self.out.write(for_terminal(text))
            self.out.flush()
            self._at_line_start = text.endswith("\n")

    def newline(self) -> None:
        if not self._at_line_start:
            self.write("\n")

    def __call__(self, event) -> None:
        if isinstance(event, ev.TextPiece):
            self.write(event.text)
        elif isinstance(event, ev.ModelWorking) and event.done == 0 and event.total >= 256:
            # Seconds to minutes on a CPU before the first word: say why it is quiet.
            self.newline()
            self.write(f"(reading {event.total:,} tokens of the conversation …)\n")
        elif isinstance(event, ev.ActionStarted):
            self.newline()
            self.write(f"── running code ({event.action_id}) ──\n")
        elif isinstance(event, ev.OutputStream):
            self.write(event.text)
        elif isinstance(event, ev.OutputAdded) and event.item.kind not in ("stdout", "stderr"):
            from .kernel.observation import item_text

            self.newline()
            self.write(item_text(event.item) + "\n")
        elif isinstance(event, ev.ActionFinished):
            self.newline()
            files = f", wrote {', '.join(map(visible_name, event.files))}" if event.files else ""
            self.write(f"── {event.status} in {event.seconds:.2f} s{files} ──\n")
        elif isinstance(event, (ev.Notice, ev.ErrorEvent)):
            self.newline()
            label = "error" if isinstance(event, ev.ErrorEvent) else "note"
            self.write(f"[{label}] {event.text}\n")
        elif isinstance(event, KernelState) and event.status in (KernelStatus.DIED, KernelStatus.FAILED,
                                                                 KernelStatus.RESTARTING):
            # The kernel's own events, on the agent's stream: a death says why, a restart that
            # the variables are gone.
            self.newline()
            self.write(f"[kernel] {event.status}{': ' + event.detail if event.detail else ''}\n")
        elif isinstance(event, ev.TurnDone):
            self.newline()


def ask_in_terminal(action_id: str, code: str) -> Approval:
    shown = for_code_view(code)[0]  # as the window's card: nothing hidden from the one who approves
    warnings = "".join(f"\n({warning})" for warning in code_warnings(code))
    print(f"\n┌─ proposed code ({action_id}){for_terminal(warnings)}\n{for_terminal(shown)}\n└─")
    while True:
        answer = input("Run it? [Y]es / [n]o / [e]dit: ").strip().lower()
        if answer in ("", "y", "yes"):
            return Approval(run=True)
        if answer in ("n", "no"):
            return Approval(run=False)
        if answer in ("e", "edit"):
            print("Enter the code, then a line with a single '.' to finish:")
            lines = []
            while (line := input()) != ".":
                lines.append(line)
            return Approval(run=True, code="\n".join(lines))


def _api_key(args) -> str | None:
    if args.api_key_file:
        try:
            return args.api_key_file.read_text().strip() or None
        except OSError as exc:
            raise BackendError(f"could not read the key file: {exc}") from None
    return os.environ.get("OPENAI_API_KEY")


def _say(text: str) -> None:
    """A line for the user on stderr; it may quote the kernel or the server, so escaped."""
    print(for_terminal(text), file=sys.stderr)


def run_command(args) -> int:
    if not args.yes and not sys.stdin.isatty():
        _say("error: standard input is not a terminal, so code cannot be confirmed; pass --yes")
        return 2
    args.prompt = well_formed(args.prompt)  # bytes that are not UTF-8 in argv arrive as lone surrogates
    if args.workdir and well_formed(str(args.workdir)) != str(args.workdir):
        _say("error: the --workdir name is not valid UTF-8; choose a folder whose name is")
        return 2
    try:
        # Everything opened is closed by one stack, on every way out (an error, Ctrl-C).
        with contextlib.ExitStack() as stack:
            return _run(args, stack)
    except KeyboardInterrupt:
        _say("\n[stopped]")
        return 130


def _run(args, stack: contextlib.ExitStack) -> int:
    paths = AppPaths.default()
    store = HistoryStore(paths.history_db)
    stack.callback(store.close)
    if recovered := recover_after_stop(store):
        _say(f"[recovered {recovered} conversation(s) whose answer was cut off when the app stopped]")
    conversation = store.create_conversation(paths.workspaces, title=args.prompt[:60], workspace=args.workdir)
    t0 = time.monotonic()
    # The kernel starts while the model loads: the first action does not wait for it.
    try:
        if args.network:
            conversation.set_network_allowed(True)
        kernel = start_kernel(paths, conversation.workspace, network=args.network)
    except Exception as exc:
        log.error("the kernel could not be prepared", exc_info=True)
        _say(f"error: the Python kernel could not be prepared: {exc}")
        return 1
    stack.callback(kernel.shutdown)
    try:
        backend = open_backend(
            model_path=args.model, base_url=args.base_url, model_name=args.model_name,
            api_key=_api_key(args), n_ctx=args.ctx,
        )
    except BackendError as exc:
        _say(f"error: {exc}")
        return 1
    stack.callback(backend.close)
    load_s = time.monotonic() - t0
    info = backend.info
    _say(f"[{info.kind}: {info.model}, {info.device}, context {info.n_ctx}]"
         + "".join(f"\n[note] {n}" for n in info.notes))
    try:
        kernel.wait_ready()
    except KernelError as exc:
        _say(f"error: {exc}")
        return 1
    _say(f"[restrictions] {kernel.sandbox.summary()}")
    if kernel.sandbox.missing and not sys.stdin.isatty():  # the engine asks before each action then, --yes or not
        _say(f"error: the code would run {kernel.sandbox.why_not()}, so each action "
             "must be confirmed, and standard input is not a terminal")
        return 2
    settings = AgentSettings(max_actions=args.max_actions, action_timeout_s=args.timeout,
                             max_new_tokens=args.max_tokens)
    agent = CodeActAgent(backend, kernel, conversation, settings, on_event=TerminalView(),
                         approve=lambda action_id, code, required: (
                             ask_in_terminal(action_id, code) if required or not args.yes else Approval(run=True)))
    stack.callback(agent.close)
    outcome: dict = {}
    # Waited on as an Event, not with Thread.join: a Ctrl-C that lands inside join() can
    # leave the thread looking finished while it still runs (seen here on CPython 3.11).
    finished = threading.Event()

    def answer() -> None:
        try:
            outcome["record"] = agent.send(args.prompt, args.file)
        except Exception:  # noqa: BLE001 - send ends its own failures; this is a listener's
            log.error("the turn's worker failed", exc_info=True)
        finally:
            finished.set()

    threading.Thread(target=answer, name="turn", daemon=True).start()
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        _say("\n[stopping…]")
        agent.cancel()
        finished.wait()
    record = outcome.get("record")
    total_s = time.monotonic() - t0
    if args.json and record is not None:
        try:
            write_transcript(args.json, args, info, settings, conversation, record, load_s, total_s)
        except OSError as exc:
            _say(f"error: the transcript could not be written to {args.json}: {exc.strerror or exc}")
            return 1
    if record is None:
        return 1
    return {"answered": 0, "action_limit": 0, "cancelled": 130}.get(record.reason, 1)


def write_transcript(path, args, info, settings, conversation, record, load_s, total_s) -> None:
    calls = record.model_calls
    final = calls[-1]["messages"] if calls else []
    last_reply = conversation.model_messages()[0][-1:] if calls else []
    transcript = {
        "prompt": args.prompt,
        "backend": vars(info),
        "settings": vars(settings),
        "conversation_id": conversation.id,
        "workspace": str(conversation.workspace),
        "reason": record.reason,
        # Exactly what the model was sent on its last call, and what it answered.
        "messages": final + [m for m in last_reply if m["role"] == "assistant"],
        "model_calls": calls,
        "actions": record.actions,
        "files": record.files,
        "tokens": {
            "prompt": sum(c["result"]["prompt_tokens"] for c in calls),
            "prompt_evaluated": sum(c["result"]["prompt_tokens_evaluated"] or 0 for c in calls),
            "completion": sum(c["result"]["completion_tokens"] for c in calls),
        },
        "timings": {
            "startup_s": round(load_s, 3),
            "total_s": round(total_s, 3),
            "generation_s": round(sum(c["result"]["seconds"] for c in calls), 3),
            "execution_s": round(sum(a["seconds"] for a in record.actions), 3),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(transcript, indent=2, ensure_ascii=False))
