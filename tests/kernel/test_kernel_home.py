"""Each conversation's kernel has its own home; the shared font list is only read."""

from __future__ import annotations

from codeact_desktop.engine import start_kernel


def _run(kernel, code: str) -> str:
    result = kernel.execute(code, timeout=60)
    assert result.status == "ok", result.items
    return "".join(item.text for item in result.items if item.kind == "stdout")


def test_conversations_do_not_share_a_home(app_paths, tmp_path):
    first = start_kernel(app_paths, tmp_path / "first", background=False)
    second = start_kernel(app_paths, tmp_path / "second", background=False)
    try:
        home = _run(first, "import os; open(os.path.expanduser('~/left-behind.txt'), 'w').write('x'); "
                           "print(os.path.expanduser('~'))").strip()
        assert home == str(app_paths.kernel_home_for(tmp_path / "first"))
        assert _run(second, "import os; print(os.path.exists(os.path.expanduser('~/left-behind.txt')))") == "False\n"

        # matplotlib starts from the seeded font list in its own folder, and the shared
        # list cannot be altered by code
        font_lists = sorted(p.name for p in app_paths.font_cache.glob("fontlist-*.json"))
        assert font_lists, "the font list was not built"
        out = _run(second, f"""
import glob, os, matplotlib
print(matplotlib.get_cachedir() == os.environ["MPLCONFIGDIR"])
print(sorted(os.path.basename(p) for p in glob.glob(os.environ["MPLCONFIGDIR"] + "/fontlist-*.json")))
try:
    open({str(app_paths.font_cache / font_lists[0])!r}, "a").write("[]")
    print("written")
except OSError:  # not there (namespaces) or read-only (Landlock alone)
    print("refused")
""")
        assert out.splitlines() == ["True", repr(font_lists), "refused"]
    finally:
        first.shutdown()
        second.shutdown()
