"""Whether a process id read from a file name or a stored record is a running process.

The id comes from something another program could have written (a name in a workspace the
code fills, a folder in a ``/tmp`` every user can write): a number no C long holds, or a
word, is an answer (not running), never an exception that stops the app's start."""

from __future__ import annotations

MAX_PID = 1 << 31  # above every OS's process ids (Linux's pid_max is at most 2**22)


def process_running(pid: int | str | None) -> bool:
    import psutil

    if isinstance(pid, str):  # ASCII digits only: int() also reads "٣" and " 3_0"
        if not (pid.isascii() and pid.isdigit()):
            return False
        pid = int(pid)
    if not isinstance(pid, int):
        return False
    number = pid
    if not 0 < number < MAX_PID:
        return False
    try:
        return psutil.pid_exists(number)
    except (OverflowError, OSError):
        return False
