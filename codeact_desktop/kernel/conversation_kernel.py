"""One conversation's kernel: started ahead of need, executes code with a deadline,
recovers from interrupts that do not take and from death.

Lifecycle lives here; output handling in ``outputs.py``; what the model reads in
``observation.py``.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

from ..resources import messages
from ..visible_text import well_formed
from .outputs import OutputItem, StreamBuffer, item_from_message
from .sandbox import (KernelLimits, RuntimeDir, SandboxReport, kernel_policy, launcher_argv, observe_namespaces,
                      read_report, unrestricted_argv)
from .venv import KernelVenv
from .watchdog import KernelWatchdog

# Imported quietly after start so the first plot of a conversation does not pay for them.
_WARM_UP = """
def __codeact_warm_up():
    import importlib
    for name in ("numpy", "pandas", "matplotlib", "matplotlib.pyplot"):
        try:
            importlib.import_module(name)
        except Exception:
            pass
__codeact_warm_up()
del __codeact_warm_up
"""

# Run by the app once the kernel is up (ConversationKernel._enter_workspace).
_ENTER_WORKSPACE = """
def __codeact_enter(workspace, packages, layers, isolated):
    import os, site, sys
    os.chdir(workspace)
    if packages:
        # Processes the code starts (`!python`, multiprocessing's spawn) see them too.
        os.environ["PYTHONPATH"] = packages
        before = list(sys.path)
        if isolated:
            site.addsitedir(packages)  # its .pth files too: this kernel is restricted
        elif packages not in sys.path:
            sys.path.append(packages)
        added = [p for p in sys.path if p not in before]
        rest = [p for p in sys.path if p not in added]
        # Never ahead of the standard library; where isolated, ahead of the base layer, so
        # what pip installed here shadows it; elsewhere last, so it shadows nothing.
        at = next((i for i, p in enumerate(rest) if p in layers), len(rest)) if isolated else len(rest)
        sys.path[:] = rest[:at] + added + rest[at:]
__codeact_enter({workspace!r}, {packages!r}, {layers!r}, {isolated!r})
del __codeact_enter
"""

# Kernels are started from one thread that lives as long as the app: bubblewrap ends a
# kernel when the thread that started it ends (Linux ties the parent-death signal to a
# thread), which must mean the app, not a short-lived start thread.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel-spawner")
INTERRUPT_GRACE_S = 5.0
START_TIMEOUT_S = 60.0
# A loop that displays ten thousand images would fill the history and the window; the
# first ones tell the story, the rest are counted.
MAX_DISPLAYS_PER_RUN = 100
# What one run may leave in the app's memory and history in all (text and image bytes):
# a stream is kept as head and tail, but code that switches between stdout and stderr, or
# displays huge texts, would otherwise start a new item each time (1.5 GB seen).
MAX_KEPT_PER_RUN = 64 << 20


class KernelError(RuntimeError):
    pass


@dataclass
class ExecutionResult:
    # "ok" | "error" | "timeout" | "timeout_restarted" | "died" | "cancelled"
    status: str
    items: list[OutputItem] = field(default_factory=list)
    seconds: float = 0.0
    detail: str = ""

    @property
    def kernel_state_lost(self) -> bool:
        return self.status in ("timeout_restarted", "died")


class ConversationKernel:
    """A real ipykernel in the kernel venv, cwd = the conversation's workspace."""

    def __init__(
        self,
        venv: KernelVenv,
        workspace: Path,
        env: dict[str, str],
        *,
        warm_up: bool = True,
        transport: str | None = None,
        argv_prefix: list[str] | None = None,
        restricted: bool = True,
        network: bool = False,
        limits: KernelLimits | None = None,
    ):
        self.venv = venv
        self.workspace = Path(workspace)
        self.env = env
        self.warm_up = warm_up
        # The launcher restricts the kernel before ipykernel starts (kernel/restricted_start.py).
        self.restricted = restricted
        self.network = network
        self.limits = limits or KernelLimits.for_this_machine()
        self.sandbox = SandboxReport()
        self._watchdog: KernelWatchdog | None = None
        # IPC avoids TCP ports entirely where the OS has Unix sockets.
        self.transport = transport or ("tcp" if os.name == "nt" else "ipc")
        self.argv_prefix = argv_prefix or []
        self._km: KernelManager | None = None
        self._kc = None
        self._runtime_dir: RuntimeDir | None = None
        self._policy: dict = {}
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._lock = threading.Lock()  # one execution at a time
        self.restarts = 0

    # -- lifecycle -----------------------------------------------------------------

    def start_in_background(self) -> None:
        """Start now, return at once; ``execute`` waits for readiness."""
        threading.Thread(target=self._start_guarded, name="kernel-start", daemon=True).start()

    def start(self) -> None:
        self._start_guarded()
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        if not self._ready.wait(timeout):
            raise KernelError(f"the Python kernel did not start within {timeout:g} s")
        if self._start_error is not None:
            raise KernelError(f"the Python kernel could not start: {self._start_error}")

    def _start_guarded(self) -> None:
        try:
            try:
                self._launch()
            except Exception as exc:
                if not self.restricted:
                    raise
                # The restriction itself broke the start (a sandbox profile this OS
                # rejects, a launcher that dies, a layer that did not take): start without
                # it. Something missing means every action waits for the user's approval,
                # and the report says why.
                self._stop_kernel(graceful=False)
                self.restricted = False
                self._launch()
                self.sandbox = SandboxReport({"start_failed": {"why": f"the restricted start failed ({exc})"}})
        except BaseException as exc:  # reported to whoever waits
            self._start_error = exc
        finally:
            self._ready.set()

    def _kernel_spec(self, runtime: RuntimeDir, report_fd: int) -> KernelSpec:
        # ipykernel interrupts itself on a message: signals would have to cross namespaces.
        spec = {"display_name": "CodeAct", "language": "python", "env": {}, "interrupt_mode": "message"}
        # The kernel's home (its packages and matplotlib's cache are inside) is its own, so
        # writable too. Only the home itself: a folder inside it may be a link the code made.
        writable = [Path(self.env["HOME"])] if "HOME" in self.env else []
        self._policy = kernel_policy(self.venv, self.workspace, runtime, writable, self.network, self.limits)
        if not self.restricted:
            # The fallback applies no layer, but starts as the restricted kernel does: the
            # base Python in isolated mode, nothing the code wrote on its path (see _launch).
            argv = unrestricted_argv(dict(self._policy, apply=False))
            return KernelSpec(argv=[*self.argv_prefix, *argv], **spec)
        argv = launcher_argv(self._policy, runtime, self.workspace, report_fd)
        return KernelSpec(argv=[*self.argv_prefix, *argv], **spec)

    def _start_environment(self, runtime: RuntimeDir) -> dict[str, str]:
        """The kernel's environment for this start: IPython's and Jupyter's configuration
        folders are new and empty, so no config file or startup script the code left in its
        home runs when the next kernel starts."""
        fresh = {name: runtime.tmp / folder for name, folder in
                 (("IPYTHONDIR", "ipython"), ("JUPYTER_CONFIG_DIR", "jupyter-config"),
                  ("JUPYTER_DATA_DIR", "jupyter-data"))}
        for folder in fresh.values():
            folder.mkdir(exist_ok=True)
        return {**self.env, **{name: str(folder) for name, folder in fresh.items()}}

    def _enter_workspace(self) -> None:
        """The kernel starts in an empty folder of the app's (ipykernel puts the working
        folder first on ``sys.path``, so a ``sqlite3.py`` the code left in the workspace
        would be imported while it starts); once it is up, it moves to the workspace and
        takes the conversation's own packages. Their ``.pth`` files run only in a kernel
        that is isolated: elsewhere nothing runs before the user said yes."""
        packages = self.env.get("CODEACT_PACKAGES", "")
        isolated = self.restricted and not self.sandbox.missing
        self._run_quietly(_ENTER_WORKSPACE.format(workspace=str(self.workspace), packages=packages,
                                                  layers=self._policy.get("site_dirs", []), isolated=isolated),
                          timeout=30)

    def set_network(self, on: bool) -> None:
        """Network for the code on or off; takes effect by restarting the kernel (state lost)."""
        self._ready.wait(START_TIMEOUT_S)  # a start under way has its policy already
        if on == self.network:
            return
        self.network = on
        if self._km is not None:
            self.restart()

    def _launch(self) -> None:
        """A new kernel, restricted by a policy made for this start alone; its report comes
        back on a pipe and is checked against what was asked and what the app sees."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        home = Path(self.env["HOME"]) if "HOME" in self.env else None
        self._runtime_dir = runtime = RuntimeDir(Path(tempfile.mkdtemp(prefix=f"cak-{os.getpid()}-")), home).make()
        read_end, write_end = os.pipe() if self.restricted else (None, None)
        try:
            spec = self._kernel_spec(runtime, write_end if write_end is not None else -1)
            km = KernelManager(kernel_name="codeact", kernel_spec_manager=_OneKernelSpec(spec),
                               transport=self.transport)
            km.connection_file = str(runtime.connection_file)
            if self.transport == "ipc":
                km.ip = str(runtime.sockets / "k")
            # The kernel's own stdout and stderr go to a log the app reads on failure, never to
            # the user's terminal, where escape sequences could retitle it or set its clipboard.
            with open(runtime.root / "kernel.log", "wb") as log:
                _SPAWNER.submit(km.start_kernel, cwd=str(runtime.start_folder), env=self._start_environment(runtime),
                                stdout=log, stderr=log,
                                **({"pass_fds": (write_end,)} if write_end is not None else {})).result()
            self._km = km
            if read_end is not None:
                os.close(write_end)
                write_end = None
                try:
                    raw = read_report(read_end, km.is_alive)
                except RuntimeError as exc:
                    raise KernelError(f"{exc}{_log_tail(runtime.root / 'kernel.log')}") from None
                self._check_restrictions(raw)
            else:
                self.sandbox = SandboxReport()
        finally:
            for fd in (read_end, write_end):
                if fd is not None:
                    os.close(fd)
        self._connect_client()
        if self._watchdog is None:  # one per session: it follows the kernel's pid across restarts
            self._watchdog = KernelWatchdog(lambda: self.pid, self.limits.memory or 1 << 62,
                                            disk_path=self.workspace, min_free_disk=self.limits.min_free_disk,
                                            folders=self._own_folders, disk_budget=self.limits.disk,
                                            max_entries=self.limits.entries).start()
        # Still in the empty folder: what it imports comes from the read-only layers. Not in
        # the unrestricted fallback: there nothing at all runs before the user's yes
        # (matplotlib would read the settings in the kernel's home).
        if self.warm_up and self.restricted:
            self._run_quietly(_WARM_UP, timeout=60)
        self._enter_workspace()

    def _own_folders(self) -> tuple[Path, ...]:
        """What this conversation's code can fill: its workspace, its home, its temp and
        socket folders."""
        runtime = self._runtime_dir
        return (self.workspace, *([Path(self.env["HOME"])] if "HOME" in self.env else []),
                *([runtime.tmp, runtime.sockets] if runtime is not None else []))

    def _check_restrictions(self, raw: dict) -> None:
        kernel_pid = _innermost(self.pid) if sys.platform == "linux" else None
        report = SandboxReport(raw, observe_namespaces(kernel_pid) if kernel_pid else {})
        wrong = report.mismatches(self._policy["in_namespaces"], self.network)
        if wrong:
            raise KernelError(f"restrictions asked for are not in force: {', '.join(wrong)}")
        self.sandbox = report

    def _connect_client(self) -> None:
        if self._kc is not None:
            self._kc.stop_channels()
        kc = self._km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=START_TIMEOUT_S)
        except BaseException:
            kc.stop_channels()  # a kernel that died at start leaves no client threads behind
            raise
        self._kc = kc

    def _run_quietly(self, code: str, timeout: float) -> None:
        msg_id = self._kc.execute(code, silent=True, store_history=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = _well_formed(self._kc.get_iopub_msg(timeout=0.5))
            except queue.Empty:
                continue
            except Exception:  # noqa: BLE001 - a mangled message: skipped
                continue
            if msg is not None and _is_idle_for(msg, msg_id):
                return

    @property
    def is_starting(self) -> bool:
        return not self._ready.is_set()

    @property
    def is_alive(self) -> bool:
        return self._km is not None and self._km.is_alive()

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self._km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        return process.pid if process is not None else None

    def interrupt(self) -> None:
        if self._km is not None:
            self._km.interrupt_kernel()

    def restart(self) -> None:
        """A fresh interpreter in the same workspace (state lost, files kept), under a
        policy and a report made anew for it."""
        self._ready.clear()
        self._start_error = None
        try:
            self._stop_kernel(graceful=False)
            self._launch()
            self.restarts += 1
        except BaseException as exc:
            self._start_error = exc
            raise KernelError(f"the Python kernel could not restart: {exc}") from exc
        finally:
            self._ready.set()

    def shutdown(self) -> None:
        self._ready.wait(START_TIMEOUT_S)
        if self._watchdog is not None:
            self._watchdog.stop()
        self._stop_kernel(graceful=True)

    def _stop_kernel(self, graceful: bool) -> None:
        if self._kc is not None:
            self._kc.stop_channels()
            self._kc = None
        if self._km is not None:
            try:
                self._km.shutdown_kernel(now=not graceful)
            except Exception:
                try:
                    self._km.shutdown_kernel(now=True)
                except Exception:
                    pass  # already gone
            self._km = None
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir.root, ignore_errors=True)
            shutil.rmtree(self._runtime_dir.tmp, ignore_errors=True)
            self._runtime_dir = None

    # -- execution -----------------------------------------------------------------

    def execute(
        self,
        code: str,
        *,
        timeout: float = 60.0,
        cancel: threading.Event | None = None,
        on_item: Callable[[OutputItem], None] | None = None,
        on_stream: Callable[[str, str], None] | None = None,
    ) -> ExecutionResult:
        """Runs ``code``; on timeout or cancel interrupts, and restarts if that fails.

        ``on_stream(name, text)`` gets live stdout/stderr pieces; ``on_item(item)`` gets
        each completed item (a stream run is completed when another item follows it).
        """
        self.wait_ready()
        with self._lock:
            if not self.is_alive:
                self.restart()
            return _Execution(self, code, timeout, cancel, on_item, on_stream).run()


def remove_abandoned_runtime_folders() -> list[str]:
    """Kernels' runtime folders (``/tmp/cak-PID-*``: connection file with its key, sockets)
    left by an app that was killed; those of a running app are left alone."""
    import psutil

    removed = []
    for folder in Path(tempfile.gettempdir()).glob("cak-*-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)) and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return f": {' / '.join(tail)}" if tail else ""


class _OneKernelSpec(KernelSpecManager):
    """jupyter_client's public way to start a kernel from a spec of our own."""

    def __init__(self, spec: KernelSpec):
        super().__init__()
        self.spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self.spec


def _innermost(pid: int | None) -> int | None:
    """The kernel itself, below bubblewrap's processes (or the process itself without them)."""
    import psutil

    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        for child in process.children(recursive=True):
            if child.name() != "bwrap":
                return child.pid
    except psutil.Error:
        pass
    return pid


def _well_formed(msg) -> dict | None:
    """The message if its envelope has the shape the code below relies on, else None."""
    if not isinstance(msg, dict) or not all(isinstance(msg.get(k), dict) for k in ("header", "parent_header",
                                                                                 "content")):
        return None
    return msg if isinstance(msg["header"].get("msg_type"), str) else None


def _is_idle_for(msg: dict, msg_id: str) -> bool:
    return (
        msg.get("parent_header", {}).get("msg_id") == msg_id
        and msg["header"]["msg_type"] == "status"
        and msg["content"].get("execution_state") == "idle"
    )


class _Execution:
    """The state of one ``execute`` call: collects items, watches deadline and death."""

    def __init__(self, session, code, timeout, cancel, on_item, on_stream):
        self.session = session
        self.code = code
        self.timeout = timeout
        self.cancel = cancel
        self.on_item = on_item or (lambda item: None)
        self.on_stream = on_stream or (lambda name, text: None)
        self.items: list[OutputItem] = []
        self.stream: StreamBuffer | None = None
        self.displays = 0
        self.displays_dropped = 0
        self.output_dropped = 0  # characters and bytes beyond MAX_KEPT_PER_RUN
        self._kept_items = 0

    def _flush_stream(self) -> None:
        if self.stream is not None:
            item = self.stream.item()
            self.stream = None
            self.items.append(item)
            self._kept_items += len(item.text)
            self.on_item(item)

    def _add(self, item: OutputItem) -> None:
        self._flush_stream()
        self.items.append(item)
        self._kept_items += len(item.data or b"") + len(item.text) + len(item.plain)
        self.on_item(item)

    def _handle(self, msg: dict) -> None:
        kind, content = msg["header"]["msg_type"], msg["content"]
        if kind == "stream":
            name = "stderr" if content.get("name") == "stderr" else "stdout"
            text = well_formed(content["text"]) if isinstance(content.get("text"), str) else ""
            if self.stream is None or self.stream.name != name:
                self._flush_stream()
                if self.kept >= MAX_KEPT_PER_RUN:
                    self.output_dropped += len(text)
                    return
                self.stream = StreamBuffer(name)
            self.stream.add(text)
            self.on_stream(name, text)
        elif kind == "clear_output":
            self._flush_stream()
        else:
            item = item_from_message(msg)
            if item is None:
                return
            if item.kind in ("image", "html", "text"):
                self.displays += 1
                if self.displays > MAX_DISPLAYS_PER_RUN:
                    self.displays_dropped += 1
                    return
            size = len(item.data or b"") + len(item.text) + len(item.plain)
            if self.kept + size > MAX_KEPT_PER_RUN:
                self.output_dropped += size
                return
            self._add(item)

    @property
    def kept(self) -> int:
        """Characters and bytes this run holds: finished items and the stream under way."""
        current = self.stream.head_len + len(self.stream.tail) if self.stream is not None else 0
        return self._kept_items + current

    def run(self) -> ExecutionResult:
        session = self.session
        kc = session._kc
        started = time.monotonic()
        msg_id = kc.execute(self.code, store_history=True, allow_stdin=False)
        deadline = started + self.timeout
        stopping: str | None = None  # "timeout" | "cancelled" once we have interrupted
        grace_until = 0.0
        while True:
            now = time.monotonic()
            if stopping is None:
                if self.cancel is not None and self.cancel.is_set():
                    stopping = "cancelled"
                elif now >= deadline:
                    stopping = "timeout"
                if stopping:
                    session.interrupt()
                    grace_until = now + INTERRUPT_GRACE_S
            elif now >= grace_until:
                # The interrupt did not take (C code, signal masked): start afresh.
                self._flush_stream()
                session.restart()
                status = "timeout_restarted" if stopping == "timeout" else "cancelled"
                return self._result(status, started, "the interrupt did not stop it")
            try:
                msg = _well_formed(kc.get_iopub_msg(timeout=0.1))
            except queue.Empty:
                if not session.is_alive:
                    self._flush_stream()
                    detail = _death_reason(session)
                    session.restart()
                    return self._result("died", started, detail)
                continue
            except Exception:  # noqa: BLE001 - a message the kernel mangled (it may send anything): skipped
                continue
            if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                continue
            if _is_idle_for(msg, msg_id):
                self._flush_stream()
                if stopping:
                    # The KeyboardInterrupt traceback says nothing the status does not.
                    self.items = [
                        i for i in self.items
                        if not (i.kind == "error" and i.ename == "KeyboardInterrupt")
                    ]
                    return self._result(stopping, started)
                failed = any(i.kind == "error" for i in self.items)
                return self._result("error" if failed else "ok", started)
            self._handle(msg)

    def _result(self, status: str, started: float, detail: str = "") -> ExecutionResult:
        notes = []
        if self.displays_dropped:
            notes.append(messages()["displays_dropped"].format(dropped=self.displays_dropped, kept=MAX_DISPLAYS_PER_RUN))
        if self.output_dropped:
            notes.append(messages()["output_dropped"].format(dropped=self.output_dropped, kept=MAX_KEPT_PER_RUN >> 20))
        if notes:
            self._flush_stream()
            self.items.append(item := OutputItem(kind="stderr", text="\n".join(notes) + "\n"))
            self.on_item(item)
        return ExecutionResult(
            status=status, items=self.items, seconds=time.monotonic() - started, detail=detail
        )


def _death_reason(session: ConversationKernel) -> str:
    watchdog = session._watchdog.take_reason() if session._watchdog is not None else ""
    if watchdog:
        return watchdog
    provisioner = getattr(session._km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    code = process.poll() if process is not None else None
    if code is None:
        return "the process stopped answering"
    if code > 128 and session._policy.get("in_namespaces"):
        code = 128 - code  # bubblewrap exits with 128 + the signal that ended the kernel
    if code < 0:
        import signal

        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
