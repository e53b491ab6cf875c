"""One conversation's kernel: its life (started ahead of need, restarted after an
interrupt that did not take or a death, shut down), told as ``KernelState`` events.

The lifecycle lives here, as in jupyter_client's ``manager.py``; one run of code and its
outputs in ``execution.py`` (the client's side); the output model in ``outputs.py``; what
the model reads in ``observation.py``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.provisioning import LocalProvisioner

from .. import defaults
from ..no_follow import remove_tree
from .execution import (INTERRUPT_GRACE_S, MAX_DISPLAYS_PER_RUN, MAX_KEPT_PER_RUN,  # noqa: F401 - re-exported
                        Execution, ExecutionResult, drop_waiting, run_quietly)
from .kernel_process import OutputTail, exit_reason, innermost_process
from .kernel_process import innermost_process as _innermost  # noqa: F401 - tests and bench find it here
from .kernel_process import remove_abandoned_runtime_folders  # noqa: F401 - re-exported
from .kernel_sockets import BoundedKernelManager
from .outputs import OutputItem
from .sandbox import (KernelLimits, RuntimeDir, SandboxReport, kernel_policy, launcher_argv, observe_namespaces,
                      read_report, unrestricted_argv)
from .setup_code import WARM_UP_MODULES, enter_workspace_code, start_environment
from .state import KernelListener, KernelState, KernelStateListeners, KernelStatus
from .venv import KernelVenv
from .watchdog import KernelWatchdog

_log = logging.getLogger(__name__)

# Kernels are started from one thread that lives as long as the app: bubblewrap ends a
# kernel when the thread that started it ends (Linux ties the parent-death signal to a
# thread), which must mean the app, not a short-lived start thread.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel-spawner")
START_TIMEOUT_S = 60.0
# A running kernel answers new sockets at once; the run that asked for them waits this long.
RECONNECT_TIMEOUT_S = 15.0
# How often what the kernel publishes with no action running is read and dropped: unread,
# it waited in the app's own ZeroMQ queue (1,000 messages of any size) for the next
# action, and a thread the code left behind moved 1.8 GB of its output into the app.
IDLE_DRAIN_S = 0.2
# ... for at most this long a round: a flood of small messages held the lock an action
# waits for (7.8 s) and a core of the app's.
IDLE_DRAIN_ROUND_S = 0.05


class KernelError(RuntimeError):
    """The kernel could not start or restart; the message says why in plain words."""


class ConversationKernel:
    """One conversation's Python: a real ipykernel in the kernel venv, restricted, its
    working folder the conversation's workspace. Runs one action at a time
    (``execute``) and tells its lifecycle to subscribers (``subscribe``, ``state``).

    Listeners are called on whichever thread made the change: the start thread, the
    thread that called ``execute``/``restart``/``shutdown``, or the watchdog's, which
    notices a kernel that dies while idle. The kernel never restarts itself on a death:
    the next ``execute`` does.
    """

    def __init__(
        self,
        venv: KernelVenv,
        workspace: Path,
        env: dict[str, str] | Callable[[], dict[str, str]],
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
        # A callable is called by the start, off the caller's thread: on a first start it
        # provisions the venv and the font list, which takes seconds.
        self._make_env = env if callable(env) else None
        self.env: dict[str, str] = {} if callable(env) else env
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
        self._km: BoundedKernelManager | None = None
        self._kc = None
        self._runtime_dir: RuntimeDir | None = None
        self._policy: dict = {}
        self._ready = threading.Event()
        self._launched = threading.Event()  # the first start's process is running (or the start failed)
        self._start_error: BaseException | None = None
        self._lock = threading.Lock()  # one execution at a time (the idle drain takes it too)
        self._acting = False  # an action runs: the code may use the processor (not the drain's turns)
        self._client_lock = threading.Lock()  # the client's sockets: read by the idle drain, closed by a stop
        self._drain: threading.Thread | None = None
        self._closed = threading.Event()
        self.restarts = 0
        self._listeners = KernelStateListeners(KernelState(KernelStatus.STOPPED))
        # Kernel processes whose end is accounted for: stopped by the app, or reported DIED
        # once. A death is told once, whoever notices it first (the watchdog or a run).
        self._ended_pids: set[int] = set()
        self._death: tuple[int | None, str] = (None, "")  # (pid, why it ended), read once per process

    # -- lifecycle events ----------------------------------------------------------

    def subscribe(self, listener: KernelListener) -> Callable[[], None]:
        """Calls ``listener(KernelState)`` on every change from now on (on the thread
        that made it); returns the function that unsubscribes."""
        return self._listeners.subscribe(listener)

    @property
    def state(self) -> KernelState:
        """The last state told (STOPPED before the first start)."""
        return self._listeners.state

    def _tell(self, status: KernelStatus, detail: str = "") -> None:
        sandbox = self.sandbox if status == KernelStatus.READY else None
        self._listeners.send(KernelState(status, detail, sandbox, self.restarts))

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
        self._tell(KernelStatus.STARTING)
        try:
            if self._make_env is not None:
                self.env, self._make_env = self._make_env(), None
            try:
                self._launch()
            except Exception as exc:
                if not self.restricted:
                    raise
                # The restriction itself broke the start (a sandbox profile this OS
                # rejects, a launcher that dies, a layer that did not take): start without
                # it. Something missing means every action waits for the user's approval,
                # and the report says why.
                _log.warning("the restricted kernel start failed; starting unrestricted", exc_info=True)
                self._stop_kernel(graceful=False)
                self.restricted = False
                self._launch()
                self.sandbox = SandboxReport({"start_failed": {"why": f"the restricted start failed ({exc})"}})
        except BaseException as exc:  # reported to whoever waits
            _log.warning("the kernel could not start", exc_info=True)
            self._start_error = exc
            self._stop_kernel(graceful=False)
            self._tell(KernelStatus.FAILED, str(exc))
        else:
            self._tell(KernelStatus.READY)
        finally:
            self._launched.set()
            self._ready.set()

    def wait_launched(self, timeout: float) -> bool:
        """Waits until the start's process is running (or the start failed), at most
        ``timeout`` s; whether it is."""
        return self._launched.wait(timeout)

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
        # Still in the empty folder: what it imports comes from the read-only layers. Not in
        # the unrestricted fallback: there nothing at all runs before the user's yes
        # (matplotlib would read the settings in the kernel's home).
        self._policy["warm_up"] = list(WARM_UP_MODULES) if self.warm_up else []
        argv = launcher_argv(self._policy, runtime, self.workspace, report_fd)
        return KernelSpec(argv=[*self.argv_prefix, *argv], **spec)

    def _enter_workspace(self) -> None:
        """The kernel starts in an empty folder of the app's (ipykernel puts the working
        folder first on ``sys.path``, so a ``sqlite3.py`` the code left in the workspace
        would be imported while it starts); once it is up, it moves to the workspace and
        takes the conversation's own packages. Their ``.pth`` files run only in a kernel
        that is isolated: elsewhere nothing runs before the user said yes."""
        packages = self.env.get("CODEACT_PACKAGES", "")
        isolated = self.restricted and not self.sandbox.missing
        run_quietly(self._kc, enter_workspace_code(str(self.workspace), packages, self._policy.get("site_dirs", []),
                                                   isolated), timeout=30)

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
            km = BoundedKernelManager(runtime.relay, kernel_name="codeact", kernel_spec_manager=_OneKernelSpec(spec),
                                      transport=self.transport)
            km.connection_file = str(runtime.connection_file)
            # Always a local process: named here, jupyter_client does not look through every
            # installed package's entry points for provisioners (a file read per package,
            # 50 ms of the first start while the window's build wants the GIL).
            km.kernel_id = str(uuid.uuid4())
            km.provisioner = LocalProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
            if self.transport == "ipc":
                km.ip = str(runtime.sockets / "k")
            # The kernel's own stdout and stderr: drained and bounded (OutputTail), read on failure.
            output_read, output_write = os.pipe()
            try:
                _SPAWNER.submit(km.start_kernel, cwd=str(runtime.start_folder),
                                env=start_environment(self.env, runtime), stdout=output_write, stderr=output_write,
                                **({"pass_fds": (write_end,)} if write_end is not None else {})).result()
            except BaseException:
                os.close(output_read)
                raise
            finally:
                os.close(output_write)
            output = OutputTail(output_read)
            self._km = km
            self._launched.set()
            if read_end is not None:
                os.close(write_end)
                write_end = None
                try:
                    raw = read_report(read_end, km.is_alive)
                except RuntimeError as exc:
                    raise KernelError(f"{exc}{output.last_lines()}") from None
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
                                            max_entries=self.limits.entries, on_exit=self._process_ended,
                                            busy=self._running).start()
        self._enter_workspace()

    def _running(self) -> bool:
        """An action or a start is under way: the code may use the processor."""
        return self._acting or not self._ready.is_set()

    def _own_folders(self) -> tuple[Path, ...]:
        """What this conversation's code can fill: its workspace, its home, its temp and
        socket folders."""
        runtime = self._runtime_dir
        return (self.workspace, *([Path(self.env["HOME"])] if "HOME" in self.env else []),
                *([runtime.tmp, runtime.sockets] if runtime is not None else []))

    def _check_restrictions(self, raw: dict) -> None:
        kernel_pid = innermost_process(self.pid) if sys.platform == "linux" else None
        report = SandboxReport(raw, observe_namespaces(kernel_pid) if kernel_pid else {})
        wrong = report.mismatches(self._policy["in_namespaces"], self.network)
        if wrong:
            raise KernelError(f"restrictions asked for are not in force: {', '.join(wrong)}")
        self.sandbox = report

    def _connect_client(self, timeout: float = START_TIMEOUT_S) -> None:
        with self._client_lock:
            if self._kc is not None:
                self._kc.stop_channels()
                self._kc = None
        kc = self._km.client()  # bounded sockets (kernel_sockets.py)
        kc.start_channels(stdin=False, hb=False, control=False)  # is_alive asks the manager
        try:
            kc.wait_for_ready(timeout=timeout)
        except BaseException:
            kc.stop_channels()  # a kernel that died at start leaves no client threads behind
            raise
        self._kc = kc
        if self._drain is None:
            self._drain = threading.Thread(target=self._drain_while_idle, name="kernel-idle-drain", daemon=True)
            self._drain.start()

    def reconnect(self) -> None:
        """New sockets to the running kernel, its state kept: the kernel's code broke a
        connection (kernel_sockets.py). A restart where the kernel does not answer on them."""
        try:
            self._connect_client(timeout=RECONNECT_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - no answer: a fresh kernel
            _log.warning("the kernel did not answer on new sockets: restarting it", exc_info=True)
            self.restart()

    @property
    def connections_cut(self) -> int:
        km = self._km
        return km.connections_cut if km is not None else 0

    def _drain_while_idle(self) -> None:
        """Reads and drops what the kernel publishes while no action runs (no run would
        keep it: each takes only its own messages), without decoding it."""
        while not self._closed.wait(IDLE_DRAIN_S):
            if not self._lock.acquire(blocking=False):
                continue  # a run reads them itself
            try:
                with self._client_lock:
                    if self._kc is not None and self._ready.is_set():
                        dropped = drop_waiting(self._kc.iopub_channel.socket, IDLE_DRAIN_ROUND_S)
                        if dropped:
                            _log.debug("dropped %d messages the kernel published between actions", dropped)
            except Exception:  # noqa: BLE001 - a socket being replaced; the next round reads the new one
                _log.debug("the idle drain skipped a round", exc_info=True)
            finally:
                self._lock.release()

    @property
    def is_starting(self) -> bool:
        return not self._ready.is_set()

    @property
    def runtime_dir(self) -> RuntimeDir | None:
        """This start's private folder (its sockets, connection file, temp): None before it."""
        return self._runtime_dir

    @property
    def policy(self) -> dict:
        """What this start's launcher was told to apply (a copy)."""
        return dict(self._policy)

    @property
    def is_alive(self) -> bool:
        km = self._km
        return km is not None and km.is_alive()

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self._km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        return process.pid if process is not None else None

    @property
    def client(self):
        """jupyter_client's blocking client of the running kernel (None until it is up)."""
        return self._kc

    @property
    def connection_file(self) -> str | None:
        return self._km.connection_file if self._km is not None else None

    def interrupt(self) -> None:
        if self._km is not None:
            self._tell(KernelStatus.INTERRUPTED)
            self._km.interrupt_kernel()

    def restart(self) -> None:
        """A fresh interpreter in the same workspace (state lost, files kept), under a
        policy and a report made anew for it."""
        self._account_for_death()  # a kernel that died is told DIED before its restart
        self._ready.clear()
        self._start_error = None
        self._tell(KernelStatus.RESTARTING)
        try:
            self._stop_kernel(graceful=False)
            self._launch()
            self.restarts += 1
        except BaseException as exc:
            _log.warning("the kernel could not restart", exc_info=True)
            self._start_error = exc
            self._tell(KernelStatus.FAILED, str(exc))
            raise KernelError(f"the Python kernel could not restart: {exc}") from exc
        else:
            self._tell(KernelStatus.READY)
        finally:
            self._ready.set()

    def shutdown(self) -> None:
        self._ready.wait(START_TIMEOUT_S)
        self._closed.set()
        if self._watchdog is not None:
            self._watchdog.stop()
        self._stop_kernel(graceful=True)
        self._tell(KernelStatus.STOPPED)

    def _stop_kernel(self, graceful: bool) -> None:
        with self._client_lock:
            if self._kc is not None:
                self._kc.stop_channels()
                self._kc = None
        if self._km is not None:
            with self._listeners.lock:  # its end is the app's doing: no DIED for it
                if (pid := self.pid) is not None:
                    self._ended_pids.add(pid)
            try:
                self._km.shutdown_kernel(now=not graceful)
            except Exception:
                _log.debug("the kernel did not shut down as asked; killing it", exc_info=True)
                try:
                    self._km.shutdown_kernel(now=True)
                except Exception:
                    _log.debug("the kernel could not be killed (already gone?)", exc_info=True)
            self._km = None
        if self._runtime_dir is not None:
            remove_tree(self._runtime_dir.root)
            remove_tree(self._runtime_dir.tmp)
            self._runtime_dir = None

    # -- death ---------------------------------------------------------------------

    def death_reason(self) -> str:
        """Why the current kernel process ended, in plain words: what the watchdog stopped
        it for, else the signal or exit code. The same answer however often asked."""
        pid = self.pid
        with self._listeners.lock:
            if self._death[0] != pid or not self._death[1]:
                self._death = (pid, self._read_death_reason())
            return self._death[1]

    def _read_death_reason(self) -> str:
        watchdog = self._watchdog.take_reason() if self._watchdog is not None else ""
        if watchdog:
            return watchdog
        provisioner = getattr(self._km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        return exit_reason(process.poll() if process is not None else None, self._policy.get("in_namespaces", False))

    def _account_for_death(self) -> None:
        """Tells DIED once for the current process if it ended without the app's asking."""
        with self._listeners.lock:
            pid = self.pid
            if pid is None or pid in self._ended_pids or self.is_alive:
                return
            self._ended_pids.add(pid)
            self._tell(KernelStatus.DIED, self.death_reason())

    def _process_ended(self, pid: int) -> None:
        """The watchdog saw the kernel's process end (its thread): a death while idle is
        told now, not when the next action finds it. A start under way reports its own."""
        if self._ready.is_set() and pid == self.pid:
            self._account_for_death()

    # -- execution -----------------------------------------------------------------

    def execute(
        self,
        code: str,
        *,
        timeout: float = defaults.ACTION_TIMEOUT_S,
        cancel: threading.Event | None = None,
        on_item: Callable[[OutputItem], None] | None = None,
        on_stream: Callable[[str, str], None] | None = None,
    ) -> ExecutionResult:
        """Runs ``code``; on timeout or cancel interrupts, and restarts if that fails.

        ``on_stream(name, text)`` gets live stdout/stderr pieces; ``on_item(item)`` gets
        each completed item (a stream run is completed when another item follows it).
        Tells BUSY, then READY when done (or the restart's states where it needed one).
        """
        self.wait_ready()
        with self._lock:
            self._acting = True
            if not self.is_alive:
                self.restart()
            self._tell(KernelStatus.BUSY)
            try:
                return Execution(self, code, timeout, cancel, on_item, on_stream).run()
            finally:
                self._acting = False
                if self.state.status in (KernelStatus.BUSY, KernelStatus.INTERRUPTED):
                    if self.is_alive:
                        self._tell(KernelStatus.READY)
                    else:
                        self._account_for_death()


class _OneKernelSpec(KernelSpecManager):
    """jupyter_client's public way to start a kernel from a spec of our own."""

    def __init__(self, spec: KernelSpec):
        super().__init__()
        self.spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self.spec
