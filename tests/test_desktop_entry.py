"""The Exec line of the Linux menu entry, for install folders with awkward names: read back
as a desktop does (the string's escapes, then the quoting rules of the shell, which the
specification follows and GLib's parser mirrors; here the real /bin/sh splits it)."""

import subprocess

import pytest

from codeact_desktop.desktop_entry import desktop_entry, exec_argument
from codeact_desktop.resources import resource_path


def launched(exec_value: str) -> list[str]:
    unescaped = exec_value.replace("\\\\", "\\").replace("%%", "%")  # the string type's escapes, then %%
    done = subprocess.run(["sh", "-c", f"printf '%s\\0' {unescaped}"], capture_output=True, text=True, check=True)
    return done.stdout.split("\0")[:-1]


@pytest.mark.parametrize("path", ["/opt/CodeAct/codeact-desktop", "/home/ana/my apps/codeact-desktop",
                                  '/tmp/a "quoted" $HOME `x` back\\slash 100%/codeact-desktop',
                                  "/home/zoë/Programme/codeact-desktop"])
def test_the_exec_line_starts_the_program_at_any_path(path):
    template = resource_path("linux", "codeact-desktop.desktop").read_text(encoding="utf-8")
    entry = desktop_entry(template, path)
    line = next(li for li in entry.splitlines() if li.startswith("Exec="))
    assert launched(line[len("Exec="):]) == [path, "%F"]


def test_a_line_break_is_refused():
    with pytest.raises(ValueError):
        exec_argument("/tmp/a\nb/codeact-desktop")
