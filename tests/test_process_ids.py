"""Process ids read from names that others write (the code names files in its workspace,
every user names folders in /tmp): no name stops the app's start (an independent attack
run, stop 33: ``.notes.partial-999…`` in a workspace raised OverflowError at every start)."""

import os
import tempfile

import pytest

from codeact_desktop.agent.attachments import remove_abandoned_copies
from codeact_desktop.kernel.kernel_process import remove_abandoned_runtime_folders
from codeact_desktop.process_ids import process_running


def test_ids_of_every_shape_are_an_answer():
    assert process_running(os.getpid()) and process_running(str(os.getpid()))
    for odd in ("9" * 30, 2**63, -1, 0, "", "12a", None, "٣"):
        assert process_running(odd) is False


def test_a_planted_partial_name_with_a_huge_id_is_removed_not_raised(tmp_path):
    (tmp_path / (".notes.partial-" + "9" * 30)).write_text("planted")
    (tmp_path / f".live.partial-{os.getpid()}").write_text("a copy under way")
    assert remove_abandoned_copies(tmp_path) == [".notes.partial-" + "9" * 30]
    assert (tmp_path / f".live.partial-{os.getpid()}").exists()


def test_runtime_folders_with_odd_ids_or_of_another_user_do_not_stop_the_start():
    odd = tempfile.mkdtemp(prefix="cak-" + "9" * 30 + "-")
    others = None
    try:
        if os.geteuid() == 0:
            others = tempfile.mkdtemp(prefix="cak-4000000-")
            os.chown(others, 65534, 65534)  # nobody's: not ours to remove
        removed = remove_abandoned_runtime_folders()
        assert os.path.basename(odd) in removed and not os.path.exists(odd)
        if others:
            assert os.path.isdir(others) and os.path.basename(others) not in removed
    finally:
        for folder in (odd, others):
            if folder and os.path.isdir(folder):
                os.rmdir(folder)


@pytest.mark.parametrize("owner", [2**63, "9" * 30])
def test_a_recorded_owner_out_of_range_is_not_running(owner):
    assert not process_running(owner)
