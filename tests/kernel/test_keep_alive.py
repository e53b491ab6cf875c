"""The rule for which conversations keep their kernel."""

from codeact_desktop.kernel.keep_alive import KernelKeepAlive


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_most_recent_keep_their_kernel_the_rest_stop_oldest_first():
    clock = Clock()
    keep = KernelKeepAlive(keep=3, idle_s=1000, clock=clock)
    for i in range(6):
        clock.now += 1
        keep.used(f"c{i}")
    assert keep.to_stop(current="c5") == ["c2", "c1", "c0"]
    assert keep.to_stop(current="c5") == []  # already forgotten


def test_current_and_busy_are_never_stopped_even_when_old_or_idle():
    clock = Clock()
    keep = KernelKeepAlive(keep=1, idle_s=10, clock=clock)
    keep.used("old-busy")
    keep.used("current")
    clock.now += 1
    keep.used("recent")
    clock.now += 100  # everything idle past the limit
    assert sorted(keep.to_stop(current="current", busy=["old-busy"])) == ["recent"]


def test_an_idle_kernel_stops_even_within_the_count():
    clock = Clock()
    keep = KernelKeepAlive(keep=4, idle_s=60, clock=clock)
    keep.used("a")
    clock.now += 30
    keep.used("b")
    clock.now += 40  # a: 70 s idle, b: 40 s
    assert keep.to_stop(current=None) == ["a"]
    keep.used("b")  # used again: its clock restarts
    clock.now += 59
    assert keep.to_stop(current=None) == []
