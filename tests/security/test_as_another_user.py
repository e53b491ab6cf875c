"""The security suites (kernel, app surfaces, the independent runs) again, as an ordinary user: the layers must hold without root's
privileges (bubblewrap then relies on unprivileged user namespaces, as on a laptop).

When the suite runs as root (CI here), a user is created for the run and the tests run
as that user. The Python under /root cannot be reached by another user (/root is 0700),
so the run happens in a private mount namespace where /root is an empty, traversable
folder with only the Python installation bound in: nothing on the machine changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux layers")

ROOT = Path(__file__).resolve().parents[2]
USER = "codeact-sectest"


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="the suite already runs as an ordinary user")
def test_the_escape_tests_pass_as_an_ordinary_user(tmp_path):
    if not (shutil.which("useradd") and shutil.which("runuser") and shutil.which("unshare")):
        pytest.skip("useradd, runuser or unshare is missing")
    created = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                             capture_output=True, text=True)
    if created.returncode not in (0, 9):  # 9: the user exists already
        pytest.skip(f"could not create a test user: {created.stderr.strip()}")
    home = tmp_path / "user-home"
    home.mkdir()
    shutil.chown(home, USER)
    tmp_path.chmod(0o755)
    python = Path(sys.base_prefix).resolve()
    expose = ""
    if python.is_relative_to("/root"):
        staged = tmp_path / "python-staged"
        staged.mkdir()
        expose = (f"mount --bind {python} {staged} && mount -t tmpfs -o mode=755 none /root && "
                  f"mkdir -p {python} && mount --bind {staged} {python} && ")
    pytest_cmd = (f"cd {ROOT} && exec runuser -u {USER} -- env HOME={home} PYTHONDONTWRITEBYTECODE=1 "
                  f"TMPDIR={home} {sys.executable} -m pytest -p no:cacheprovider -q "
                  f"tests/security/test_kernel_escapes.py tests/security/test_app_surfaces.py "
                  f"tests/security/test_independent_runs.py tests/security/test_attacks_deep_folders.py "
                  f"tests/test_no_follow.py")
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", expose + pytest_cmd],
                              capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run(["userdel", USER], capture_output=True)
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
    assert done.returncode == 0, tail
    assert " passed" in tail and "skipped" not in tail.splitlines()[-1], tail
