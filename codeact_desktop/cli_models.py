"""``codeact-desktop models list`` and ``models download [ID]``, with a terminal progress bar."""

from __future__ import annotations

import shutil
import sys
import threading

from .sizes import human_size
from .models.catalogue import find_entry, load_catalogue
from .models.download import DownloadCancelled, DownloadError, Progress, VerifiedFiles, download_model, find_downloaded
from .paths import AppPaths


def list_models() -> int:
    paths = AppPaths.default()
    verified = VerifiedFiles(paths.verified_models)
    for entry in load_catalogue():
        found = find_downloaded(entry, paths.models, verified)
        state = f"downloaded: {found}" if found else "not downloaded"
        mark = " (default)" if entry.default else ""
        print(f"{entry.id}{mark}\n  {entry.name} · about {human_size(entry.size_bytes)} · needs about "
              f"{human_size(entry.ram_needed_bytes)} of memory · {entry.n_ctx_train} tokens of context\n"
              f"  {entry.repo}/{entry.file}\n  {state}")
    return 0


def progress_line(p: Progress) -> str:
    width = 30
    filled = int(width * p.done / p.total) if p.total else 0
    eta = f"{int(p.eta_s // 60)}:{int(p.eta_s % 60):02d} left" if p.eta_s is not None else ""
    verb = "checking" if p.stage == "verifying" else "downloading"
    return (f"\r{verb} [{'#' * filled}{'.' * (width - filled)}] {human_size(p.done)} / {human_size(p.total)}"
            f"  {human_size(int(p.bytes_per_s))}/s  {eta}   ")


def download(model_id: str | None) -> int:
    paths = AppPaths.default()
    try:
        entry = find_entry(model_id)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    cancel = threading.Event()
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(p: Progress):
        if tty:
            sys.stderr.write(progress_line(p)[: shutil.get_terminal_size().columns + 1])
            sys.stderr.flush()
        elif p.done - last[0] >= max(p.total // 20, 1):  # a log line every 5 % without a terminal
            last[0] = p.done
            print(progress_line(p).strip(), file=sys.stderr)

    print(f"{entry.name}: {entry.repo}/{entry.file}", file=sys.stderr)
    try:
        path = download_model(entry, paths.models, VerifiedFiles(paths.verified_models), show, cancel)
    except KeyboardInterrupt:
        print("\nCancelled; run the same command again to resume.", file=sys.stderr)
        return 130
    except DownloadCancelled as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    except DownloadError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1
    print(f"\nready: {path}")
    return 0
