"""Stop 33's independent attack run: what code can hold that no process's memory and no walk
of the conversation's folders shows, and the processor it can keep after its action.

Each test runs the attack as the model's action in a real restricted kernel through the real
agent, and fails if the attack gets through."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from codeact_desktop.kernel import watchdog
from codeact_desktop.kernel.sandbox import GB, KernelLimits
from codeact_desktop.kernel.state import KernelStatus
from codeact_desktop.no_follow import remove_tree


def test_disk_held_by_files_with_no_name_counts_in_the_budget(conversations):
    """O_TMPFILE files (and files removed while open) take disk that no walk of the folders
    finds; ``posix_fallocate`` takes it at once, without writing. 2 GB against a 200 MB
    budget ran on untouched."""
    a = conversations(limits=KernelLimits(address_space=4 * GB, memory=1536 << 20, disk=200 << 20))
    observation = a.act("""
import os, time
held = []
for i in range(4):
    fd = os.open(os.path.expanduser('~'), os.O_TMPFILE | os.O_RDWR, 0o600)
    os.posix_fallocate(fd, 0, 128 << 20)
    held.append(fd)
removed = open('gone.bin', 'wb'); os.posix_fallocate(removed.fileno(), 0, 64 << 20); os.remove('gone.bin')
time.sleep(5)
print('STILL ALIVE')
""")
    assert "STILL ALIVE" not in observation and "over its 0.195 GB limit" in observation, observation


def test_epoll_watches_past_the_limit_stop_the_kernel(conversations):
    """The user's epoll watches are one count across every namespace; eventfds and epolls
    are neither sockets nor pipes, so the open-file count did not see them. 40,000 watches
    here (250,000 a process fit under the open-file limit)."""
    a = conversations()
    observation = a.act("""
import os, select, time
fds = [os.eventfd(0) for _ in range(200)]
polls = [select.epoll() for _ in range(200)]
for p in polls:
    for fd in fds:
        p.register(fd, select.EPOLLIN)
print('WATCHING', 200 * 200, flush=True)
time.sleep(5)
print('STILL ALIVE')
""")
    assert "WATCHING 40000" in observation and "STILL ALIVE" not in observation, observation
    assert f"more than {watchdog.MAX_EPOLL_WATCHES:,} files with epoll" in observation, observation


def test_code_left_spinning_after_its_action_is_stopped_and_idle_code_is_not(conversations):
    """A process (or thread) left spinning kept a core busy for as long as the kernel lived,
    the conversation looking idle. A thread that waits is left alone, variables and all."""
    a = conversations()
    a.act("import threading\nkept = 42\nwaiter = threading.Thread(target=threading.Event().wait, daemon=True)\n"
          "waiter.start()\nprint('waiting')")
    time.sleep(watchdog.IDLE_CPU_WINDOW_S + 3)
    assert a.act("print(kept, waiter.is_alive())").endswith("42 True\n")

    observation = a.act("""
import subprocess, sys
subprocess.Popen([sys.executable, '-c', 'while True: pass'], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print('left one spinning')
""")
    assert a.last["status"] == "ok", observation
    deadline = time.monotonic() + watchdog.IDLE_CPU_WINDOW_S + 10
    while time.monotonic() < deadline and a.kernel.state.status != KernelStatus.DIED:
        time.sleep(0.5)
    assert not a.kernel.is_alive, "the spinning process was left running"
    assert "kept" in a.kernel.state.detail and "of a processor busy" in a.kernel.state.detail, a.kernel.state
    assert a.act("print('back')").endswith("back\n")


NESTED = """
import os, time
fd = os.open('.', os.O_RDONLY | os.O_DIRECTORY)
for i in range({levels}):
    name = f'{{i:03d}}' + 'd' * {name_chars}
    os.mkdir(name, dir_fd=fd)
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
f = os.open('big', os.O_CREAT | os.O_RDWR, 0o600, dir_fd=fd)
os.posix_fallocate(f, 0, 384 << 20)
os.close(f)
time.sleep(5)
print('STILL ALIVE')
"""


@pytest.mark.parametrize("levels, name_chars, why", [
    (18, 247, "over its 0.195 GB limit"),  # a path of 4,500 bytes: not listed by name
    (watchdog.MAX_WALK_DEPTH + 2, 1, f"nest more than {watchdog.MAX_WALK_DEPTH} deep"),
])
def test_files_below_a_path_too_long_to_name_count_in_the_budget(conversations, levels, name_chars, why):
    """The budget's walk listed folders by their whole path: past 4,096 bytes it was refused
    (ENAMETOOLONG) and what they held was not counted (2 GB over a 200 MB budget). Now it
    goes by folder descriptors, one a level, and folders nested past its depth are a reason."""
    a = conversations(limits=KernelLimits(address_space=4 * GB, memory=1536 << 20, disk=200 << 20))
    try:
        observation = a.act(NESTED.format(levels=levels, name_chars=name_chars))
    finally:
        a.kernel.shutdown()
        for chain in a.workspace.glob("000*"):  # real blocks: never left behind
            remove_tree(chain)
    assert "STILL ALIVE" not in observation and why in observation, observation


def test_what_every_program_of_the_users_shares_stays_mostly_theirs(conversations):
    """Kernel resources counted for the user across namespaces, or shared by every sandbox:
    each was taken whole by one kernel, and a program outside failed. Now: pending signals
    (POSIX timers take one each) stop at the kernel's own limit; a pipe cannot be grown past
    64 KB (the user's 64 MB of pipe pages); descriptors in flight over Unix sockets stop at
    the open-file limit plus one message's 253, under a desktop program's 1,024."""
    a = conversations()
    observation = a.act("""
import ctypes, fcntl, os, signal, socket
libc = ctypes.CDLL(None, use_errno=True)
timers = 0
while timers < 200_000:
    t = ctypes.c_void_p()
    if libc.timer_create(1, None, ctypes.byref(t)) != 0:  # CLOCK_MONOTONIC, SIGALRM on expiry
        break
    timers += 1
print('timers', timers, os.strerror(ctypes.get_errno()))
r, w = os.pipe()
try:
    fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ
    print('pipe grown')
except OSError as e:
    print('pipe', e.strerror)
x, y = socket.socketpair()
x.setblocking(False)
sent = 0
try:
    while sent < 5000:
        socket.send_fds(x, [b'.'], [r]); sent += 1
except OSError as e:
    print('in flight', sent, e.strerror)
""")
    timers = int(observation.split("timers ")[1].split()[0])
    assert 0 < timers <= 1024, observation
    assert "pipe Operation not permitted" in observation and "pipe grown" not in observation, observation
    in_flight = int(observation.split("in flight ")[1].split()[0])
    assert 100 < in_flight < 1024 - 253, observation


def test_terminals_past_the_limit_stop_the_kernel(conversations):
    """Every sandbox's devpts shares 3,072 pseudo-terminals: one kernel held 3,071, and
    another conversation's ``!cmd`` failed."""
    a = conversations()
    observation = a.act("""
import os, time
held = []
for _ in range(watchdog_limit + 36):
    held.append(os.openpty())
print('HOLDING', len(held), flush=True)
time.sleep(5)
print('STILL ALIVE')
""".replace("watchdog_limit", str(watchdog.MAX_PTYS)))
    assert "HOLDING 100" in observation and "STILL ALIVE" not in observation, observation
    assert "terminals open at once" in observation, observation


def test_the_kernel_cannot_park_its_output_in_the_apps_memory_between_actions(conversations):
    """Nothing read the kernel's IOPub channel between actions, so a thread the code left
    behind moved its output into the app's ZeroMQ queue one message at a time (1.8 GB, the
    kernel's own memory small) for the next action to decode. Now it is read and dropped."""
    import psutil

    a = conversations(limits=KernelLimits(address_space=4 * GB, memory=768 << 20))
    me = psutil.Process()
    before = me.memory_info().rss
    observation = a.act("""
import threading, time
kernel = get_ipython().kernel
def flood():
    time.sleep(0.5)
    for i in range(36):                      # 36 x 24 MB, one at a time in the kernel
        kernel.session.send(kernel.iopub_socket, 'stream', {'name': 'stdout', 'text': chr(65 + i % 26) * (24 << 20)},
                            parent={}, ident=b'stream.stdout')
        time.sleep(0.25)
threading.Thread(target=flood, daemon=True).start()
print('flood thread left running')
""")
    assert "flood thread left running" in observation, observation
    peak = 0
    for _ in range(24):
        time.sleep(0.5)
        peak = max(peak, me.memory_info().rss - before)
    assert a.kernel.is_alive
    started = time.monotonic()
    assert a.act("print('next')").endswith("next\n")
    assert peak < 256 << 20 and time.monotonic() - started < 5, (peak >> 20, time.monotonic() - started)


# -- the second independent run of stop 33, against the fixes above ----------------------

def _stopped_for_spinning(a) -> bool:
    deadline = time.monotonic() + watchdog.IDLE_CPU_WINDOW_S + 15
    while time.monotonic() < deadline and a.kernel.state.status != KernelStatus.DIED:
        time.sleep(0.5)
    return a.kernel.state.status == KernelStatus.DIED and "of a processor busy" in a.kernel.state.detail


def test_short_lived_children_left_spinning_are_counted(conversations):
    """A loop left behind forks a child that spins 0.3 s, exits and is reaped, again and
    again: only processes alive at a look were counted (21.4 processor-seconds in 22 s)."""
    a = conversations()
    a.act("""
import os, threading, time
def chain():
    while True:
        pid = os.fork()
        if pid == 0:
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
threading.Thread(target=chain, daemon=True).start()
print('left')
""")
    assert _stopped_for_spinning(a), a.kernel.state


def test_the_idle_drain_neither_hides_code_left_spinning_nor_holds_the_next_action(conversations):
    """The drain took the run's lock, which the idle rule read as an action running: a
    thread publishing tiny messages as fast as it could was never stopped (17.8
    processor-seconds in 22 s), and the app spent 16 s of its own reading them."""
    a = conversations()
    a.act("""
import threading
kernel = get_ipython().kernel
def flood():
    while True:
        kernel.session.send(kernel.iopub_socket, 'stream', {'name': 'stdout', 'text': 'x'}, parent={},
                            buffers=[b'x'] * 200)
threading.Thread(target=flood, daemon=True).start()
print('left')
""")
    assert _stopped_for_spinning(a), a.kernel.state
    started = time.monotonic()
    assert a.act("print('next')").endswith("next\n") and time.monotonic() - started < 10


def test_terminals_held_by_their_other_side_count_too(conversations):
    """``openpty()``, the master closed, the slave kept: 300 terminals taken, none counted."""
    a = conversations()
    observation = a.act("""
import os, time
kept = []
for _ in range(100):
    master, slave = os.openpty()
    os.close(master)
    kept.append(slave)
print('HOLDING', len(kept), flush=True)
time.sleep(5)
print('STILL ALIVE')
""")
    assert "HOLDING 100" in observation and "STILL ALIVE" not in observation, observation


def test_a_folder_the_code_made_unreadable_is_counted(tmp_path):
    """Mode 0o300 (files go in, nobody lists them): the budget's walk, as an ordinary user,
    skipped the folder and its 600 MB. Its owner's rights come back and it is counted."""
    import os
    import subprocess
    import tempfile

    top = tempfile.mkdtemp(prefix="codeact-unreadable-")
    try:
        os.chmod(top, 0o755)
        locked = os.path.join(top, "locked")
        os.mkdir(locked)
        with open(os.path.join(locked, "hidden.bin"), "wb") as f:
            f.write(b"\1" * (4 << 20))
        os.chmod(locked, 0o300)
        if os.geteuid() == 0:  # root reads every folder: the walk is tried as the folder's ordinary owner
            for path in (top, locked, os.path.join(locked, "hidden.bin")):
                os.lchown(path, 65534, 65534)
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the walk as that user, with everything already imported
            try:
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                os.write(write, str(watchdog.folder_usage(Path(top)).bytes).encode())
            finally:
                os._exit(0)
        os.close(write)
        counted = os.read(read, 100)
        os.close(read)
        os.waitpid(child, 0)
        assert int(counted or 0) >= 4 << 20, counted
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", top])
        remove_tree(Path(top))


def test_sockets_sent_away_or_closed_with_data_count_in_the_kernels_network(conversations):
    """With the network off the kernel's network namespace is its own, and shows what no
    descriptor does: socket pairs sent over a Unix socket and closed (750 in flight, 28
    counted), and data left in closed TCP connections (1.6 GB in 440, past the machine's
    TCP memory pressure line)."""
    a = conversations()
    observation = a.act("""
import socket, time
carrier, keeper = socket.socketpair()
sent = 0
try:
    for _ in range(700):
        x, y = socket.socketpair()
        socket.send_fds(carrier, [b'.'], [x.fileno(), y.fileno()])
        x.close(); y.close(); sent += 1
except OSError as e:
    print('stopped', e.strerror)
print('IN FLIGHT', sent, flush=True)
time.sleep(5)
print('STILL ALIVE')
""")
    assert "IN FLIGHT" in observation and "STILL ALIVE" not in observation, observation
    assert "its network held" in observation, observation

    b = conversations()
    observation = b.act("""
import socket, time
server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen(1000)
held = []
for _ in range(200):
    c = socket.create_connection(server.getsockname()); s, _ = server.accept()
    c.setblocking(False)
    try:
        while True:
            c.send(b'x' * 65536)
    except BlockingIOError:
        pass
    held.append(s)  # never read
    c.close()       # its unsent data stays, in a socket no process holds
print('CONNECTIONS', len(held), flush=True)
time.sleep(5)
print('STILL ALIVE')
""")
    assert "STILL ALIVE" not in observation and "MB queued" in observation, observation


def test_memory_and_disk_held_only_by_a_mapping_count(conversations):
    """A shared anonymous mapping that exited children filled (1.2 GB, the parent's RSS
    small), and files mapped, closed and removed (no descriptor shows them): neither was
    in any count. Now the tree's mappings are read once a second."""
    a = conversations(limits=KernelLimits(address_space=4 * GB, memory=768 << 20))
    observation = a.act("""
import mmap, os, time
shared = mmap.mmap(-1, 1200 << 20, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
for part in range(3):
    if os.fork() == 0:
        shared[part * (400 << 20):(part + 1) * (400 << 20)] = b'\\1' * (400 << 20)
        os._exit(0)
    os.wait()
time.sleep(5)
print('STILL ALIVE')
""")
    assert "STILL ALIVE" not in observation and "GB of memory" in observation, observation
    assert a.act("print('back')").endswith("back\n")  # nothing read of the last kernel stops the next

    b = conversations(limits=KernelLimits(address_space=4 * GB, memory=1536 << 20, disk=200 << 20))
    observation = b.act("""
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
for i in range(5):
    fd = os.open(f'hidden{i}', os.O_CREAT | os.O_RDWR, 0o600)
    os.posix_fallocate(fd, 0, 100 << 20)
    libc.mmap(None, 100 << 20, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED; no descriptor kept
    os.close(fd)
    os.remove(f'hidden{i}')
time.sleep(5)
print('STILL ALIVE')
""")
    assert "STILL ALIVE" not in observation and "over its 0.195 GB limit" in observation, observation
