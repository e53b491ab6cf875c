"""The app's own cost per action of finding what the action wrote, in a workspace of
100,000 files (100 folders of 1,000), each action writing one file in a different folder.

Ours: the OS's notices (``agent.workspace_changes``, inotify). Peers: the before/after look
of before (``agent.workspace.snapshot``), bounded at 20,000 entries as it was (it stops
listing there) and unbounded (what finding every file by looking costs).

Goal (issue 15): ours <= 50 ms an action with 100,000 files, no produced file missed.

    .venv/bin/python bench/workspace_scan.py [--files 100000] [--actions 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import median, report  # noqa: E402

from codeact_desktop.agent.workspace import changed_files, snapshot  # noqa: E402
from codeact_desktop.agent.workspace_changes import WorkspaceChanges  # noqa: E402


def make_workspace(n: int) -> Path:
    ws = Path(tempfile.mkdtemp(prefix="codeact-bench-ws-"))
    for i in range(n):
        folder = ws / f"f{i // 1000}"
        if i % 1000 == 0:
            folder.mkdir()
        (folder / f"{i}.txt").write_bytes(b"")
    return ws


def run(ws: Path, actions: int, finder) -> tuple[float, int]:
    """Median ms per action and how many of the actions' files were found."""
    times, found = [], 0
    for k in range(actions):
        target = f"f{k % 100}/made_{k}_{finder.__name__}.csv"
        (ws / target).write_text("x,y\n")  # the action's work, not timed
        started = time.perf_counter()
        produced = finder(ws)
        times.append((time.perf_counter() - started) * 1000)
        found += target in [p for p, _ in produced]
    return median(times), found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--actions", type=int, default=20)
    args = parser.parse_args()
    ws = make_workspace(args.files)

    changes = WorkspaceChanges(ws)
    changes.before_action()

    def notices(_ws):
        found = changes.after_action()
        changes.before_action()
        return found

    seen = {"bounded": snapshot(ws), "unbounded": snapshot(ws, max_entries=10**9)}

    def bounded(ws):
        before, seen["bounded"] = seen["bounded"], snapshot(ws)
        return changed_files(before, seen["bounded"])

    def unbounded(ws):
        before, seen["unbounded"] = seen["unbounded"], snapshot(ws, max_entries=10**9)
        return changed_files(before, seen["unbounded"])

    results = {name: run(ws, args.actions, f) for name, f in
               (("notices", notices), ("bounded", bounded), ("unbounded", unbounded))}
    ours = results["notices"][0]
    rows = [[name, ms, ms / ours, f"{hits}/{args.actions}"] for name, (ms, hits) in results.items()]
    rows[0][0] = "ours: the OS's notices (inotify)"
    rows[1][0] = "peer: the look of before, bounded at 20,000 entries"
    rows[2][0] = "peer: the same look, unbounded"
    report("workspace_scan", ["finding an action's files", "ms per action (median)", "× ours", "files found"], rows,
           {"files": args.files, "actions": args.actions})
    changes.close()


if __name__ == "__main__":
    main()
