"""Which files an action produced: a before/after look at the workspace."""

from __future__ import annotations

import os
from pathlib import Path

from ..store.history import OUTPUTS_DIR

Snapshot = dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)


def snapshot(workspace: Path) -> Snapshot:
    found: Snapshot = {}
    for root, dirs, files in os.walk(workspace):
        dirs[:] = [d for d in dirs if not (Path(root) == workspace and d == OUTPUTS_DIR)]
        for name in files:
            path = Path(root) / name
            try:
                st = path.stat()
            except OSError:
                continue
            found[str(path.relative_to(workspace))] = (st.st_size, st.st_mtime_ns)
    return found


def changed_files(before: Snapshot, after: Snapshot) -> list[tuple[str, int]]:
    """New or modified files, with their sizes, newest names last."""
    return [(p, after[p][0]) for p in sorted(after) if before.get(p) != after[p]]
