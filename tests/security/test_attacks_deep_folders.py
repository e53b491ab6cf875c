"""Folders nested thousands deep, made by model code where the app later removes or walks
them: its temp folder (made new at each start), its home and its workspace (removed with
the conversation). ``mkdir`` relative to a descriptor knows no path length, and Python's
shutil.rmtree recurses: at 1,000 levels it raised RecursionError, which its
``ignore_errors`` does not catch. The kernel's next start then failed for good ("the Python
kernel could not restart: maximum recursion depth exceeded"), and deleting the conversation
left its files on disk. Folders the code locked (mode 000, 0555) did the same for an ordinary
user (``test_as_another_user.py`` runs this file too). Real restricted kernel, real agent;
each check fails if it gets through."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from codeact_desktop.no_follow import remove_tree

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the layers tested here are Linux's")

NEST = """
import os, tempfile
def nest(base, depth=3000):
    fd = os.open(base, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir('d', dir_fd=fd)
        inner = os.open('d', os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(os.open('secret.txt', os.O_WRONLY | os.O_CREAT, dir_fd=fd))
for base in (tempfile.gettempdir(), os.path.expanduser('~'), os.getcwd()):
    os.mkdir(os.path.join(base, 'deep'))
    nest(os.path.join(base, 'deep'))
    # Locked: no one but root may list a mode-000 folder or unlink in a 0555 one, and the
    # stuck folder's chain was walked again in every round (an ordinary user's kernel could
    # not start again: "File exists: .../.tmp").
    for locked, mode in (('locked', 0), ('read-only', 0o555)):
        os.makedirs(os.path.join(base, locked, 'inner'))
        open(os.path.join(base, locked, 'inner', 'f'), 'w').close()
        os.chmod(os.path.join(base, locked, 'inner'), mode)
        os.chmod(os.path.join(base, locked), mode)
print('nested')
"""


def test_folders_nested_thousands_deep_neither_stop_the_next_start_nor_survive_deletion(conversations, app_paths):
    a = conversations()
    home = app_paths.kernel_home_for(a.workspace)
    try:
        assert "nested" in a.act(NEST)
        a.act("import os; os._exit(1)")  # the restart removes its temp folder first
        assert "still here" in a.act("print('still here')")
        a.kernel.shutdown()
        a.kernel.start()  # and so does every later start
        assert "again" in a.act("print('again')")
        a.kernel.shutdown()
        # Deleting the conversation removes its folder and its home (window_conversations does these two calls).
        assert remove_tree(home) and remove_tree(a.workspace)
        assert not os.path.lexists(a.workspace) and not os.path.lexists(home)
    finally:  # a chain left behind breaks pytest's own clean-up of later sessions (it recurses)
        for folder in (home, a.workspace):
            if not remove_tree(folder):
                subprocess.run(["rm", "-rf", str(folder)], check=False)  # GNU rm walks any depth
