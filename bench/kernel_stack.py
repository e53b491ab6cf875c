"""What the kernel's file stack costs (docs/kernel-stack.md): ready time, idle memory,
first-use imports, installed size.

- ready: from "start a kernel" to a kernel that has run the app's warm-up (numpy, pandas,
  matplotlib imported, as every conversation's kernel does) and entered its workspace,
  the median of several starts of the real restricted kernel;
- idle memory: that kernel's PSS, USS and RSS a second after it is ready (the Python
  process inside bubblewrap, read from outside with psutil);
- first use: each heavy package imported in a fresh, warm kernel (seconds, and the RSS
  it adds), since they are imported on first use, not at start;
- size: the installed size of the stack's distributions and of what they pull in that the
  rest of the app does not, from their RECORD files, and what the bundle's pruning keeps.

The peer is the same app without the stack: a copy of the base layer that leaves the
stack's files out (hard links, made once with ``--make-without-stack``), started in turn
with the real one, so both see the same machine at the same moment:

    .venv/bin/python bench/kernel_stack.py --make-without-stack /tmp/without-stack
    .venv/bin/python bench/kernel_stack.py --without-stack /tmp/without-stack

``--label NAME --base DIRS`` measures one base layer alone (``DIRS`` in front of the app's
own), as for the figures taken before the stack was installed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import median, report  # noqa: E402

os.environ.setdefault("CODEACT_HOME", tempfile.mkdtemp(prefix="codeact-bench-"))

N = 5
ROOT = Path(__file__).resolve().parent.parent
# The stack's distributions (docs/kernel-stack.md), as pyproject.toml declares them.
STACK = ("pypdf", "pdfplumber", "pdfminer.six", "pypdfium2", "reportlab", "python-docx", "python-pptx",
         "XlsxWriter", "python-calamine", "odfpy", "fastparquet", "lxml", "beautifulsoup4",
         "opencv-python-headless", "scikit-image", "imageio", "imageio-ffmpeg", "moviepy", "soundfile",
         "qrcode", "wordcloud", "jieba", "charset-normalizer", "tabulate")
FIRST_USE = {
    "cv2": "import cv2", "skimage": "import skimage.feature, skimage.io", "moviepy": "import moviepy.editor",
    "imageio (+ffmpeg)": "import imageio.v3, imageio_ffmpeg", "pdfplumber": "import pdfplumber",
    "pypdf": "import pypdf", "reportlab": "import reportlab.platypus", "docx": "import docx", "pptx": "import pptx",
    "fastparquet": "import fastparquet", "bs4 + lxml": "import bs4, lxml.html", "soundfile": "import soundfile",
    "wordcloud": "import wordcloud", "jieba (+ dictionary)": "import jieba; jieba.initialize()",
    "qrcode": "import qrcode",
}
_MEASURE = """
import time, resource
def __rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
__r0, __t0 = __rss(), time.perf_counter()
{code}
print('__first_use', time.perf_counter() - __t0, __rss() - __r0)
"""


def _kernel(warm_up: bool = True, case: str = ""):
    from codeact_desktop.engine import kernel_env
    from codeact_desktop.kernel.conversation_kernel import ConversationKernel
    from codeact_desktop.kernel.venv import ensure_kernel_venv
    from codeact_desktop.paths import AppPaths

    paths = AppPaths.default()
    venv = ensure_kernel_venv(paths.kernel_venv.with_name(f"kernel-venv{case}"))  # one per base layer
    workspace = Path(tempfile.mkdtemp(prefix="ws-"))
    return ConversationKernel(venv, workspace, kernel_env(paths, venv, workspace), warm_up=warm_up)


def _kernel_process(session):
    import psutil

    from codeact_desktop.kernel.conversation_kernel import _innermost

    return psutil.Process(_innermost(session.pid))


def _start_and_measure(case: str, base: str | None) -> tuple[float, dict]:
    if base is None:
        os.environ.pop("CODEACT_KERNEL_BASE", None)
    else:
        os.environ["CODEACT_KERNEL_BASE"] = base
    session = _kernel(case=case)
    t0 = time.perf_counter()
    session.start()
    took = time.perf_counter() - t0
    time.sleep(1.0)
    info = _kernel_process(session).memory_full_info()
    session.shutdown()
    return took, {"pss": info.pss, "uss": info.uss, "rss": info.rss}


def ready_and_idle(starts: int, cases: dict[str, str | None]) -> dict[str, tuple[list[float], list[dict]]]:
    """``cases``: name -> base layer (None: the app's own). Started in turn, after one
    unmeasured start each (kernel venv, font cache, page cache)."""
    found = {name: ([], []) for name in cases}
    for name, base in cases.items():
        _start_and_measure(name, base)
    for _ in range(starts):
        for name, base in cases.items():
            took, memory = _start_and_measure(name, base)
            found[name][0].append(took)
            found[name][1].append(memory)
    os.environ.pop("CODEACT_KERNEL_BASE", None)
    return found


def first_use() -> dict[str, tuple[float, int]]:
    found = {}
    for label, code in FIRST_USE.items():
        session = _kernel()
        session.start()
        result = session.execute(_MEASURE.format(code=code), timeout=300)
        out = "".join(i.text for i in result.items if i.kind == "stdout")
        match = re.search(r"__first_use (\S+) (\S+)", out)
        found[label] = (float(match.group(1)), int(match.group(2))) if match else (float("nan"), 0)
        session.shutdown()
    return found


def stack_distributions() -> list:
    """The stack's distributions and those only they pull in (not the rest of the app)."""
    import importlib.metadata as md
    import tomllib

    from packaging.requirements import Requirement

    def normal(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    dists = {normal(d.metadata["Name"]): d for d in md.distributions()}

    def closure(names):
        seen, todo = set(), [normal(n) for n in names]
        while todo:
            name = todo.pop()
            if name in seen or name not in dists:
                continue
            seen.add(name)
            for req in dists[name].requires or []:
                r = Requirement(req)
                if r.marker is None or r.marker.evaluate({"extra": ""}):
                    todo.append(normal(r.name))
        return seen

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(d) for d in project["dependencies"]]
    declared = [r.name for r in requirements if r.marker is None or r.marker.evaluate()]
    stack = {normal(s) for s in STACK}
    rest = closure([d for d in declared if normal(d) not in stack])
    return [dists[name] for name in sorted(closure(stack) - rest)]


def sizes() -> dict:
    """Installed bytes of the stack and of the distributions only it pulls in; and the part
    the bundle's pruning (packaging/bundle_common.prune) would remove."""
    new = stack_distributions()
    pruned_kinds = (".pyx", ".pxd", ".c", ".h", ".hpp", ".a", ".lib")
    per, kept = {}, 0
    for d in new:
        total = dropped = 0
        for f in d.files or []:
            path = Path(d.locate_file(f))
            try:
                n = path.lstat().st_size
            except OSError:
                continue
            total += n
            parts = Path(str(f)).parts
            if "tests" in parts[:-1] or "include" in parts[:-1] or path.suffix in pruned_kinds:
                dropped += n
        per[f"{d.metadata['Name']}=={d.version}"] = total
        kept += total - dropped
    return {"per_distribution": dict(sorted(per.items(), key=lambda kv: -kv[1])), "installed": sum(per.values()),
            "kept_in_bundle": kept, "new_distributions": len(new)}


def make_without_stack(dest: Path) -> None:
    """The base layer as it was before the stack: hard links to every file of the app's
    site-packages but the stack's (no space used, no copy to keep in step)."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    left_out = {Path(d.locate_file(f)).resolve() for d in stack_distributions() for f in d.files or []}
    for root, dirs, files in os.walk(site):
        here = Path(root)
        dirs[:] = [d for d in dirs if (here / d).resolve() not in left_out]
        for name in files:
            source = here / name
            if source.resolve() in left_out:
                continue
            target = dest / source.relative_to(site)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                target.symlink_to(os.readlink(source))
            else:
                os.link(source, target)
    print(f"{dest}: the base layer without the {len(left_out)} files of the stack")


def _summary(times: list[float], memory: list[dict]) -> dict:
    return {"ready_s": median(times), **{k: median([m[k] for m in memory]) for k in ("pss", "uss", "rss")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without-stack", type=Path, help="the peer: a base layer made by --make-without-stack")
    parser.add_argument("--make-without-stack", type=Path, metavar="DIR", help="make that base layer, then stop")
    parser.add_argument("--label", default="", help="measure one base layer alone: results/kernel_stack-LABEL.json")
    parser.add_argument("--base", help="with --label: package folders (os.pathsep) in front of the base layer")
    parser.add_argument("--no-first-use", action="store_true")
    parser.add_argument("--starts", type=int, default=N, help="kernel starts for the medians (default: %(default)s)")
    args = parser.parse_args()
    if args.make_without_stack:
        make_without_stack(args.make_without_stack)
        return
    from codeact_desktop.kernel.venv import base_layer_paths

    own = None
    if args.base:
        own = os.pathsep.join([args.base, *map(str, base_layer_paths())])
    cases = {"": own}
    if args.without_stack:
        cases["-without-stack"] = str(args.without_stack.resolve())
    measured = ready_and_idle(args.starts, cases)
    now = _summary(*measured[""])
    peer = _summary(*measured["-without-stack"]) if args.without_stack else None
    extra = {"starts": args.starts, "samples": measured, "summary": now, "without_stack": peer,
             "base": own or os.pathsep.join(map(str, base_layer_paths()))}
    if not args.no_first_use:
        if own:
            os.environ["CODEACT_KERNEL_BASE"] = own
        extra["first_use"] = first_use()
    extra["size"] = sizes()
    rows = []
    for key, label, scale in (("ready_s", "ready (warm-up done) s, median", 1),
                              ("pss", "idle kernel PSS MB", 1e6), ("uss", "idle kernel USS MB", 1e6),
                              ("rss", "idle kernel RSS MB", 1e6)):
        rows.append([label, round(now[key] / scale, 3), round(peer[key] / scale, 3) if peer else "-",
                     round(now[key] / peer[key], 2) if peer else "-"])
    for label, (seconds, grown) in extra.get("first_use", {}).items():
        rows.append([f"first use: {label} (s, +RSS MB)", round(seconds, 3), "-", f"+{grown / 1e6:.0f} MB"])
    size = extra["size"]
    rows.append(["stack installed MB (new distributions)", round(size["installed"] / 1e6, 1), "-",
                 f"{size['new_distributions']} distributions"])
    rows.append(["... of which the bundle keeps MB", round(size["kept_in_bundle"] / 1e6, 1), "-", "-"])
    name = f"kernel_stack-{args.label}" if args.label else "kernel_stack"
    report(name, ["what", args.label or "with the stack", "without (peer)" if peer else "-", "ratio"], rows, extra)


if __name__ == "__main__":
    main()
