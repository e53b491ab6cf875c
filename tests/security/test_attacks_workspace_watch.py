"""Attacks on the app's watch of the workspace (agent/workspace_changes.py): the app, with
the user's rights, learns from inotify (or a bounded full look) which files an action
produced. Model code wants it to list or report the user's files, to use up the user's
inotify watches and instances, to make after_action slow or hang, to miss produced files
while it says the list is complete, or to crash the turn. Each attack is a real action in
a real restricted kernel where it can be, otherwise a test playing the kernel's part in a
temp folder; each test fails if the attack gets through."""

from __future__ import annotations

import errno
import gc
import os
import sys
import time

import pytest

from codeact_desktop.agent import workspace_changes
from codeact_desktop.agent.workspace import MAX_ENTRIES
from codeact_desktop.agent.workspace_changes import WorkspaceChanges

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")

SECRET_NAME = "id_rsa_4f1c"


@pytest.fixture
def users_files(tmp_path):
    """A folder of the user's, next to the workspaces, that the app must never list."""
    folder = tmp_path / "users-files"
    folder.mkdir()
    (folder / SECRET_NAME).write_text("the user's key")
    return folder


def _timed(changes: WorkspaceChanges) -> list[tuple[float, list]]:
    """Records how long each after_action took and what it found."""
    took = []
    real = changes.after_action

    def after_action():
        started = time.perf_counter()
        found = real()
        took.append((time.perf_counter() - started, found))
        return found

    changes.after_action = after_action
    return took


def _produced(a) -> list[str]:
    return [f["path"] for f in a.conversation.files() if f["origin"] == "produced"]


def _inotify_fds() -> dict[int, int]:
    """This process's inotify descriptors, each with how many watches it holds."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                found[int(name)] = sum(line.startswith("inotify ") for line in open(f"/proc/self/fdinfo/{name}"))
        except OSError:
            pass
    return found


def test_1_a_folder_swapped_for_a_link_while_the_app_looks_lists_nothing_outside(conversations, users_files):
    """The attacker wants the user's file names: once the app looks at the whole workspace
    (more folders than it watches), code swaps folders for links to the user's folder
    (renameat2 RENAME_EXCHANGE, in a loop) hoping the app sees a folder when it reads the
    name and follows the link when it lists it, then reports ``a0/id_rsa`` as produced."""
    a = conversations()
    target = os.path.relpath(users_files, a.workspace)
    a.act(f"""
import ctypes, os, threading
for i in range({workspace_changes.MAX_WATCHED_FOLDERS + 1}):
    os.mkdir(f'f{{i}}')
for i in range(16):
    os.mkdir(f'a{{i}}')
    os.symlink({target!r}, f'l{{i}}')
libc = ctypes.CDLL(None, use_errno=True)
swaps = [0]
def swap():
    while not os.path.exists('stop'):
        for i in range(16):
            swaps[0] += libc.renameat2(-100, f'a{{i}}'.encode(), -100, f'l{{i}}'.encode(), 2) == 0
threading.Thread(target=swap, daemon=True).start()
""")
    assert not a.agent.workspace_changes.watching  # the full look from here on
    for _ in range(8):
        a.act("import time; time.sleep(0.1)")
    observation = a.act("open('stop', 'w').close(); print('swaps', swaps[0])")
    assert int(observation.split("swaps")[1].split()[0]) > 1000, observation  # the race really ran
    leaked = [p for p in _produced(a) if SECRET_NAME in p]
    assert leaked == [], f"the app listed the user's folder: {leaked}"


@pytest.mark.parametrize("given_up", [False, True], ids=["after_an_overflow", "watches_given_up"])
def test_2_the_swap_at_the_worst_moment_for_both_full_looks(tmp_path, users_files, monkeypatch, given_up):
    """The same swap, played at the one moment that counts: right after the app has read
    the workspace's names and before it lists the folder it saw there. Both full looks:
    after an overflowed queue, and the before/after look once the watches were given up."""
    real_scandir = os.scandir

    ws = tmp_path / f"ws{given_up}"
    ws.mkdir()
    (ws / "a").mkdir()
    (ws / "l").symlink_to(os.path.relpath(users_files, ws))
    watched = WorkspaceChanges(ws)
    watched.before_action()
    if given_up:
        watched._give_up("test: the before/after look")
        watched.before_action()  # its "before", unhindered
    else:
        watched._trusted = False  # as after an overflow
    time.sleep(0.1)
    (users_files / SECRET_NAME).write_text("touched by the user's desktop meanwhile")  # ctime now
    swapped = []

    class Listing:
        def __init__(self, *args):
            self.inner = real_scandir(*args)

        def __enter__(self):
            return self

        def __iter__(self):
            return iter(self.inner)

        def __exit__(self, *exc):
            self.inner.close()
            if not swapped:  # the workspace's own listing is done: now the kernel swaps
                swapped.append(1)
                os.rename(ws / "a", ws / "tmp")
                os.rename(ws / "l", ws / "a")
                os.rename(ws / "tmp", ws / "l")

    monkeypatch.setattr(os, "scandir", Listing)
    found = watched.after_action()
    monkeypatch.setattr(os, "scandir", real_scandir)
    watched.close()
    assert swapped and os.path.islink(ws / "a")
    assert [p for p, _ in found if SECRET_NAME in p] == [], (given_up, found)


def test_3_a_new_folder_of_very_many_files_is_listed_no_further_than_the_full_look(conversations):
    """The attacker wants after_action slow and the list unbounded: a new folder is one
    notice, and everything in it is listed when the app watches it. 30,000 files made in
    it: the app must stop at MAX_ENTRIES, and say the list is incomplete."""
    a = conversations()
    took = _timed(a.agent.workspace_changes)
    a.act(f"import os\nos.mkdir('d')\nfor i in range({MAX_ENTRIES + 10_000}):\n    open(f'd/{{i}}', 'w').close()")
    seconds, found = took[-1]
    print(f"after_action over a new folder of {MAX_ENTRIES + 10_000} files: {seconds:.2f} s, {len(found)} listed")
    assert len(found) <= MAX_ENTRIES and not a.agent.workspace_changes.complete, len(found)
    assert seconds < 3


def test_4_deep_folders_do_not_slow_the_action(conversations):
    """The attacker wants after_action slow: a chain of 300 nested folders with 3,000
    files at its end. The app opens every folder a step at a time from the workspace (no
    link followed), so each file cost 300 opens (54 s for 900 x 5,000 before the fix)."""
    a = conversations()
    took = _timed(a.agent.workspace_changes)
    deep = "/".join(["a"] * 300)
    a.act(f"import os\nos.makedirs({deep!r})\nfor i in range(3000):\n    open(f'{deep}/{{i}}', 'w').close()")
    a.act(f"for i in range(3000):\n    open(f'{deep}/more{{i}}', 'w').close()")
    for seconds, found in took:
        print(f"after_action, chain of 300 folders: {seconds:.2f} s, {len(found)} files")
    assert [len(found) for _, found in took] == [3000, 3000]
    assert max(seconds for seconds, _ in took) < 3


def test_5_renaming_a_folder_of_folders_over_and_over_does_not_hold_the_turn(conversations):
    """The attacker wants the turn to hang: each rename of a folder makes the app watch it
    again with all its sub-folders. 300 sub-folders, renamed back and forth 2,000 times in
    20 ms (under the queue's 16,384 notices): 600,000 folders to watch (39 s before)."""
    a = conversations()
    took = _timed(a.agent.workspace_changes)
    a.act("import os\nfor i in range(300):\n    os.makedirs(f'x/s{i}')")
    a.act("import os\nfor i in range(2000):\n    os.rename('x', 'y'); os.rename('y', 'x')\n"
          "open('x/s7/after.txt', 'w').close()")
    seconds, found = took[-1]
    print(f"after_action after 4,000 renames of a folder of 300: {seconds:.2f} s")
    assert seconds < 3
    assert ("x/s7/after.txt", 0) in found


def test_6_a_flood_of_notices_from_code_still_running_ends(conversations):
    """The attacker wants after_action never to return: a thread left running writes two
    files in turn (no two notices alike, so none merge) while the app reads the queue."""
    a = conversations()
    took = _timed(a.agent.workspace_changes)
    a.act("""
import os, threading
def flood():
    x, y = os.open('x', os.O_WRONLY | os.O_CREAT), os.open('y', os.O_WRONLY | os.O_CREAT)
    while not os.path.exists('stop'):
        for _ in range(1000):
            os.write(x, b'1'); os.write(y, b'1')
threading.Thread(target=flood, daemon=True).start()
""")
    a.act("import time; time.sleep(1)")
    a.act("open('stop', 'w').close()")
    print("after_action under a flood: " + ", ".join(f"{s:.2f} s" for s, _ in took))
    assert max(seconds for seconds, _ in took) < 3


def test_7_the_users_watches_and_instances_stay_bounded(conversations):
    """The attacker wants the user's inotify watches (shared with the whole desktop) used
    up: 3,000 folders, and overflowed queues that make the app start over, three times.
    The app holds one instance at most, MAX_WATCHED_FOLDERS watches at most, none after."""
    gc.collect()
    before = set(_inotify_fds())
    a = conversations()
    for round_ in range(3):
        a.act(f"import os\nos.makedirs('burst{round_}', exist_ok=True)\n"
              f"for i in range(20000):\n    open(f'burst{round_}/{{i}}', 'w').close()\n"
              f"for i in range(1000):\n    os.makedirs(f'r{round_}/{{i}}')")
        mine = {fd: n for fd, n in _inotify_fds().items() if fd not in before}
        assert len(mine) <= 1 and sum(mine.values()) <= workspace_changes.MAX_WATCHED_FOLDERS, mine
    a.agent.close()
    assert {fd for fd in _inotify_fds() if fd not in before} == set()


def test_8_kernel_code_cannot_use_up_the_users_inotify_instances(conversations):
    """The attacker wants the desktop's file watching broken: inotify instances are counted
    per user (128 by default) across every namespace, the sandbox's included. Code opens
    as many as it can and keeps them; the app, and any program of the user, must still get
    one."""
    a = conversations()
    observation = a.act("""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
held = []
while len(held) < 4096:
    fd = libc.inotify_init1(0)
    if fd < 0:
        print('stopped by errno', ctypes.get_errno())
        break
    held.append(fd)
print('held', len(held))
""")
    try:
        from inotify_simple import INotify

        INotify().close()
        got_one = True
    except OSError as exc:
        got_one = exc.errno != errno.EMFILE
    a.act("for fd in held:\n    os.close(fd)")
    assert got_one, f"kernel code used up the user's inotify instances: {observation}"


def test_9_a_file_written_while_the_app_starts_its_watches_again_is_not_lost(tmp_path, monkeypatch):
    """The attacker wants a produced file missed while the list says complete: after an
    overflow the app looks at all and then watches again; code still running writes a file
    in between, which no notice and no later look would name."""
    ws = tmp_path / "ws"
    ws.mkdir()
    watched = WorkspaceChanges(ws)
    watched.before_action()
    n = int(open("/proc/sys/fs/inotify/max_queued_events").read()) + 100
    for i in range(n):
        (ws / f"{i}").write_bytes(b"")
    real = WorkspaceChanges._watch_all

    def watch_all_with_a_write_first(self):
        (ws / "between.txt").write_text("hidden")  # code still running
        monkeypatch.setattr(WorkspaceChanges, "_watch_all", real)
        real(self)

    monkeypatch.setattr(WorkspaceChanges, "_watch_all", watch_all_with_a_write_first)
    first = watched.after_action()
    watched.before_action()
    second = watched.after_action()
    watched.close()
    assert ("between.txt", 6) in first + second and watched.complete


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder of mode 000: nothing to hide")
def test_10_a_folder_unreadable_while_the_app_watches_hides_nothing_later(conversations):
    """The attacker wants files missed for good: a new folder made unreadable (chmod 000)
    before the app watches it is left unwatched; made readable again, what is written in it
    makes no notice."""
    a = conversations()
    a.act("import os\nos.mkdir('d')\nos.chmod('d', 0)")
    a.act("import os\nos.chmod('d', 0o700)\nopen('d/hidden.txt', 'w').write('x')")
    assert a.last["files"] == ["d/hidden.txt"], a.last["files"]
    assert a.agent.workspace_changes.complete


def test_11_names_that_break_decoding_crash_nothing_and_reach_no_one(conversations):
    """The attacker wants the turn crashed (an exception out of after_action) or a name
    the app cannot store or show: names that are not UTF-8, a folder named so with files
    in it, control characters, a file named like the app's outputs folder, a fifo."""
    a = conversations()
    observation = a.act(r"""
import os
os.mkdir(b'\xff\xfe')
open(b'\xff\xfe/inner.txt', 'w').write('x')
open(b'bad\xff.txt', 'w').write('x')
open('ok\nline\x1b[2J.txt', 'w').write('x')
os.mkfifo('fifo')
os.mkdir('d')
os.rename(b'\xff\xfe', b'd/\xff\xfe')
os.rename('d', b'\xfa\xfb')
os.rename(b'\xfa\xfb', 'e')
print('ok')
""")
    assert a.last["status"] == "ok" and observation.rstrip().endswith("ok"), observation
    assert all(p.encode("utf-8") for p in a.last["files"])  # no lone surrogates
    assert "ok\nline\x1b[2J.txt" in a.last["files"] and "fifo" not in a.last["files"]
    a.act("open('e/after.txt', 'w').write('x')")
    assert a.last["files"] == ["e/after.txt"]
