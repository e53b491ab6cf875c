"""CodeAct Desktop: an offline assistant whose local model does the work by writing Python.
With no command it opens the window (with FILEs, in a new conversation); the commands
run, models and doctor work in the terminal."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__, defaults


def _file_argument(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty file name (it would mean the whole current folder)")
    return Path(text)


COMMANDS = ("run", "models", "doctor")


def window_parser() -> argparse.ArgumentParser:
    """``codeact-desktop [FILE...]``: the window, with files to attach to a new
    conversation (how a desktop's "Open with" and a drop on the icon start the app)."""
    parser = argparse.ArgumentParser(prog="codeact-desktop", description=__doc__,
                                     epilog=f"commands: {', '.join(COMMANDS)} (codeact-desktop COMMAND --help)")
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--model", help="a GGUF file to load")
    parser.add_argument("--base-url", help="an OpenAI-compatible server")
    parser.add_argument("--model-name", help="the model's name on that server")
    parser.add_argument("--self-test", action="store_true",
                        help="check this install end to end (kernel, restrictions, plot, --model, window) and "
                             "print one verdict line")
    parser.add_argument("files", nargs="*", type=_file_argument, help="files to attach to a new conversation")
    return parser


def _start_log(command: str) -> None:
    """The app's log file, for every entry point (the window's ui/app.py calls it too)."""
    import logging
    import platform

    from . import app_log
    from .paths import AppPaths

    if app_log.setup(AppPaths.default()) is not None:
        logging.getLogger(__name__).info("codeact-desktop %s started: %s (Python %s, %s)", __version__, command,
                                         platform.python_version(), platform.platform())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The app does no linear algebra of its own, but numpy's OpenBLAS starts a thread per
    # core at import that spins for 0.1 s of CPU, in the middle of the start (the model's
    # load imports numpy). Kernels have their own environment: the user's code keeps them.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _start_log(argv[0] if argv and argv[0] in COMMANDS else "window")  # never the arguments: file names, prompts
    if not argv or argv[0] not in COMMANDS:
        args = window_parser().parse_args(argv)
        if args.self_test:
            from .self_test import self_test

            return self_test(args.model)
        from .ui.app import main as window_main

        return window_main(args.model, args.base_url, args.model_name, files=args.files)

    parser = argparse.ArgumentParser(prog="codeact-desktop", description=__doc__)
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run one request headless and stream it to the terminal")
    run.add_argument("prompt")
    run.add_argument("--file", action="append", default=[], type=_file_argument,
                     help="copy into the workspace and name it to the model (repeatable)")
    run.add_argument("--model", help="a GGUF file run in-process by llama.cpp")
    run.add_argument("--base-url", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    run.add_argument("--model-name", help="the model's name on that server (default: its first)")
    # Not --api-key VALUE: a command line is readable by every program of the user's.
    run.add_argument("--api-key-file", type=Path, help="a file holding the server's bearer token "
                     "(default: the OPENAI_API_KEY environment variable)")
    run.add_argument("--api-key", help=argparse.SUPPRESS)
    run.add_argument("--workdir", type=Path, help="workspace folder (default: a new one under the data folder)")
    run.add_argument("--max-actions", type=int, default=defaults.MAX_ACTIONS,
                     help=f"code runs per message (default {defaults.MAX_ACTIONS})")
    run.add_argument("--timeout", type=float, default=defaults.ACTION_TIMEOUT_S,
                     help=f"seconds per code run (default {defaults.ACTION_TIMEOUT_S:g})")
    run.add_argument("--max-tokens", type=int, default=defaults.MAX_NEW_TOKENS,
                     help=f"new tokens per reply (default {defaults.MAX_NEW_TOKENS})")
    run.add_argument("--ctx", type=int, default=None,
                     help=f"context size (default {defaults.N_CTX}, capped by the model)")
    run.add_argument("--json", type=Path, help="write the transcript as JSON here")
    run.add_argument("--yes", action="store_true", help="run code without asking")
    run.add_argument("--network", action="store_true",
                     help="let the code reach the network, e.g. for pip (off by default)")

    models = sub.add_parser("models", help="the model catalogue: list, download")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("list", help="the catalogue and what is downloaded")
    dl = models_sub.add_parser("download", help="download and check a catalogue model (resumable)")
    dl.add_argument("model_id", nargs="?", help="catalogue id (default: the default model)")

    sub.add_parser("doctor", help="what this machine offers: llama.cpp build, GPU offload, kernel, sandbox")

    args = parser.parse_args(argv)
    if args.command == "run":
        if args.api_key:
            parser.error("--api-key would leave the key in the command line, where other programs can read it; "
                         "put it in OPENAI_API_KEY or in a file given with --api-key-file")
        from .cli_run import run_command

        return run_command(args)
    if args.command == "models":
        from . import cli_models

        return cli_models.list_models() if args.models_command == "list" else cli_models.download(args.model_id)
    if args.command == "doctor":
        from .doctor import print_report

        return print_report()
    return 2


if __name__ == "__main__":
    sys.exit(main())
