"""A GGUF's own chat template, rendered within bounds of time and memory.

The template is Jinja from the model file, so as hostile as the file: Jinja's sandbox keeps
it from Python's internals (an independent run tried a dozen escapes; all held), but not
from loops and sizes. Two nested ``range(100000)`` loops held the model's worker for about
seven minutes with Stop doing nothing, and ``'x' * 3000000000`` took 2.9 GB in 1.4 s. So
string and list repetition and powers are checked before they run, and the render is
traced: past RENDER_SECONDS or RENDER_BYTES of growth it stops with a message."""

from __future__ import annotations

import sys
import time
import types
from typing import Callable, TypeVar

import psutil

from .base import BackendError

RENDER_SECONDS = 2.0
RENDER_BYTES = 512 << 20
MAX_REPEAT = 1 << 20  # characters or items one `*` may make
T = TypeVar("T")


class TemplateTooCostly(BackendError):
    """The model file's chat template ran past its bounds; it was stopped."""


def _bounded_binop(environment, context, operator: str, left, right):
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(times, int) \
                    and len(sequence) * max(times, 0) > MAX_REPEAT:
                raise TemplateTooCostly("The model file's chat template asked for a string or list of more "
                                        f"than {MAX_REPEAT:,} items; it was stopped.")
    if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
        raise TemplateTooCostly("The model file's chat template asked for a power past 64; it was stopped.")
    return type(environment).call_binop(environment, context, operator, left, right)


def bounded_formatter(formatter):
    """llama-cpp-python's Jinja2ChatFormatter, its template compiled again with ``*`` and
    ``**`` intercepted (Jinja checks them at compile time)."""
    template = getattr(formatter, "_environment", None)
    if template is None or not hasattr(template, "environment"):
        return formatter  # another llama-cpp-python: the time and memory bounds still hold
    environment = template.environment
    environment.intercepted_binops = frozenset({"*", "**"})
    environment.call_binop = types.MethodType(_bounded_binop, environment)
    formatter._environment = environment.from_string(formatter.template)
    return formatter


def bounded_render(render: Callable[[], T], seconds: float = RENDER_SECONDS, max_growth: int = RENDER_BYTES) -> T:
    """``render()`` on this thread, traced: every line the template runs checks the clock,
    and the process's memory every few milliseconds (``sys.settrace`` is this thread's alone)."""
    process = psutil.Process()
    start_rss = process.memory_info().rss
    deadline = time.monotonic() + seconds
    next_memory_check = 0.0

    def trace(frame, event, arg):
        nonlocal next_memory_check
        now = time.monotonic()
        if now > deadline:
            raise TemplateTooCostly(f"The model file's chat template took more than {seconds:g} s to build the "
                                    "prompt; it was stopped. Choose another model.")
        if now > next_memory_check:
            next_memory_check = now + 0.005
            if process.memory_info().rss - start_rss > max_growth:
                raise TemplateTooCostly(f"The model file's chat template took more than {max_growth >> 20} MB of "
                                        "memory to build the prompt; it was stopped.")
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        return render()
    finally:
        sys.settrace(previous)
