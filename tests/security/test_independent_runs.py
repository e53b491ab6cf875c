"""What two independent attack runs found after the first round of fixes, each tried
again for real (the real agent, the real restricted kernel, the real CLI against a real
HTTP model server); each test fails if the attack gets through. Letters follow the
first run's report; ``test_run2_*`` are the second run's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from codeact_desktop.export import export_conversation
from codeact_desktop.kernel import conversation_kernel as session_module
from codeact_desktop.kernel.sandbox import GB, KernelLimits
from tests.scripted_openai import ScriptedOpenAIServer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the layers tested here are Linux's")


def test_d_the_app_never_follows_a_link_in_the_kernels_socket_folder(conversations):
    listener_path = Path("/tmp") / f".codeact-test-desk-{os.getpid()}.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(listener_path))
    listener.listen(64)
    listener.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        a = conversations()
        observation = a.act(f"""
import os
folder = {str(a.kernel.runtime_dir.sockets)!r}  # its own sockets: the app connects to these
for name in os.listdir(folder):
    try:
        os.unlink(os.path.join(folder, name)); os.symlink({str(listener_path)!r}, os.path.join(folder, name))
        print('REPLACED', name)
    except OSError as e:
        print('refused', type(e).__name__)
""")
        assert "REPLACED" not in observation and "refused" in observation, observation
        a.act("import os\nos._exit(0)")  # the kernel dies: the app's sockets lose their peer
        time.sleep(3)
        assert accepted == [], f"the app connected {len(accepted)} times to a socket the code chose"
    finally:
        stop.set()
        thread.join()
        listener.close()
        listener_path.unlink(missing_ok=True)


def test_a_lone_surrogates_from_the_kernel_or_the_server_do_not_break_the_turn(conversations, tmp_path):
    a = conversations()
    observation = a.act("import json\nk = get_ipython().kernel\n"
                        "k.session.pack = lambda o: json.dumps(o, default=str, ensure_ascii=True).encode()\n"
                        "print('x\\ud800y')")
    assert a.last["status"] == "ok" and "x?y" in observation, observation
    assert a.act("print('next')").endswith("next\n")
    server = ScriptedOpenAIServer(["Thinking \ud800 now <execute>\nprint('a\\udcff')\n</execute>", "done \udfff"])
    try:
        done = subprocess.run([sys.executable, "-m", "codeact_desktop.cli", "run", "go \udcff", "--base-url",
                               server.url, "--yes", "--workdir", str(tmp_path / "ws"), "--json",
                               str(tmp_path / "t.json")], capture_output=True, timeout=240,
                              stdin=subprocess.DEVNULL)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    transcript = json.loads((tmp_path / "t.json").read_text())
    assert transcript["reason"] == "answered" and transcript["actions"][0]["status"] == "ok"


def test_b_output_kept_from_one_run_is_bounded(conversations):
    a = conversations()
    observation = a.act("import sys\nc = 'A' * (1 << 20)\nfor i in range(300):\n"
                        "    (sys.stdout if i % 2 else sys.stderr).write(c); (sys.stdout if i % 2 else sys.stderr).flush()\n"
                        "print('end')")
    kept = sum(len(o["text"] or "") for o in a.conversation.outputs(a.last["id"]))
    assert kept <= (session_module.MAX_KEPT_PER_RUN + (2 << 20)), kept
    assert "more characters of output were not kept" in observation, observation[-500:]


def test_c_memory_of_many_forked_children_is_judged_too(conversations):
    a = conversations(limits=KernelLimits(address_space=4 * GB, memory=1536 << 20))
    observation = a.act("""
import os, time
for i in range(20):
    if os.fork() == 0:
        b = bytearray(150 << 20)
        for j in range(0, len(b), 4096):
            b[j] = 1
        time.sleep(30)
        os._exit(0)
time.sleep(30)
""")
    assert a.last["status"] == "died" and "memory" in observation, observation


def test_i_the_kernels_temp_folder_and_its_file_count_are_in_the_budget(conversations):
    a = conversations(limits=KernelLimits(address_space=4 * GB, memory=1536 << 20, disk=400 << 20))
    observation = a.act("""
import os, time
folder = os.environ['TMPDIR']
for i in range(12):
    with open(os.path.join(folder, f'part{i}.bin'), 'wb') as f:
        for _ in range(100):
            f.write(b'\\1' * 2**20)
    time.sleep(0.3)
time.sleep(20)
""")
    assert a.last["status"] == "died" and "over its" in observation, observation
    b = conversations(limits=KernelLimits(address_space=4 * GB, memory=1536 << 20, entries=20_000))
    observation = b.act("import os, time\nos.makedirs('many', exist_ok=True)\n"
                        "for i in range(60_000):\n    open(f'many/{i}', 'w').close()\ntime.sleep(20)")
    assert b.last["status"] == "died" and "files, over its 20,000 limit" in observation, observation


class _Loads(HTMLParser):
    def __init__(self):
        super().__init__()
        self.bad = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            value = (value or "").strip().lower()
            if (name == "src" and not value.startswith("data:")) or (name == "href" and value.startswith(
                    ("javascript:", "data:", "vbscript:", "file:"))) or tag == "script":
                self.bad.append((tag, name, value[:40]))


def test_g_the_markdown_export_loads_nothing_and_links_nowhere_odd(conversations, tmp_path):
    import markdown

    a = conversations()
    reply = ("All done. \\`<img src=\"https://attacker.example/reply.png\">` and [see][r]\n\n"
             "[r]: javascript:alert(document.domain)\n\n- item\n  ```\n<script>alert(1)</script>\n```")
    a.act("from IPython.display import HTML, display\n"
          "display(HTML('<b>t</b>\\n\\n![p](https://attacker.example/output.png)\\n\\n[x](javascript:alert(1))'))",
          then=reply)
    exported = export_conversation(a.conversation, tmp_path / "chat.md").read_text()
    for extensions in ([], ["fenced_code"], ["fenced_code", "tables"]):
        audit = _Loads()
        audit.feed(markdown.markdown(exported, extensions=extensions))
        assert audit.bad == [], (extensions, audit.bad)


def test_x_an_export_into_the_workspace_never_writes_through_planted_links(conversations, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    a = conversations()
    a.act(f"import os\nos.symlink({str(victim / 'owned.md')!r}, 'conversation.md')\n"
          f"os.symlink({str(victim)!r}, 'conversation_files')\nos.symlink({str(victim / 'owned.html')!r}, 'c.html')")
    a.act("import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()")
    for name in ("conversation.md", "c.html"):
        with pytest.raises(OSError):
            export_conversation(a.conversation, a.workspace / name)
    assert list(victim.iterdir()) == []


# -- the second independent run ---------------------------------------------------------

def test_run2_memory_outside_any_process_cannot_be_made(conversations):
    a = conversations()
    observation = a.act("""
import os, ctypes
try:
    os.memfd_create('m'); print('memfd ALLOWED')
except OSError as e:
    print('memfd refused', e.errno)
libc = ctypes.CDLL(None, use_errno=True)
print('shmget', 'ALLOWED' if libc.shmget(0, 1 << 20, 0o1600) >= 0 else 'refused')
""")
    assert "ALLOWED" not in observation and observation.count("refused") == 2, observation


def test_run2_sockets_count_in_the_entry_budget(conversations):
    a = conversations(limits=KernelLimits(address_space=4 * GB, memory=1536 << 20, entries=20_000))
    observation = a.act(f"""
import os, socket, time
for i in range(60_000):
    s = socket.socket(socket.AF_UNIX); s.bind(os.path.join({str(a.kernel.runtime_dir.sockets)!r}, f'z{{i}}')); s.close()
time.sleep(20)
""")
    assert a.last["status"] == "died" and "files, over its 20,000 limit" in observation, observation
