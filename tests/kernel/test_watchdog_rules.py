"""The watchdog's arithmetic for processor time left running after an action: what a
process gains from children it waited for is capped per look, so a whole action's work,
reaped once the action ended, does not read as spinning (on a laptop of many cores the cap
was a look's length per core: 8 s of 10 from one reap)."""

from codeact_desktop.kernel.watchdog import IDLE_CPU_SHARE, IDLE_CPU_WINDOW_S, processor_used


def test_a_child_reaped_after_the_action_counts_one_looks_worth():
    assert processor_used({1: (5.0, 0.0)}, {1: (5.0, 60.0)}, 1.0) == 1.0
    assert 1.0 < IDLE_CPU_SHARE * IDLE_CPU_WINDOW_S  # one reap alone never stops the kernel


def test_own_time_counts_whole_and_a_process_born_between_looks_all_of_its_own():
    assert processor_used({1: (5.0, 0.0)}, {1: (5.5, 0.0), 2: (0.8, 0.0)}, 1.0) == 1.3
    assert processor_used({1: (5.0, 0.0), 3: (9.0, 0.0)}, {1: (5.0, 0.0)}, 1.0) == 0.0  # one that ended: nothing
