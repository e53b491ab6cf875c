#!/usr/bin/env bash
# Vulkan and SPIR-V headers new enough for the vendored llama.cpp, on Debian 12 whose own
# (1.3.239) lack vk::LayerSettingEXT: Debian 13's packages, unpacked (headers only; the
# loader and glslc stay the system's). Prints the prefix to pass as --vulkan-sdk.
set -euo pipefail
prefix="${1:-$(cd "$(dirname "$0")/.." && pwd)/build/vulkan-sdk}"
if [ ! -f "$prefix/usr/include/vulkan/vulkan.hpp" ]; then
    work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
    list="$work/trixie.list"
    echo "deb http://deb.debian.org/debian trixie main" > "$list"
    opts=(-o Dir::Etc::SourceList="$list" -o Dir::Etc::SourceParts=/dev/null
          -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o Debug::NoLocking=1)
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    apt-get "${opts[@]}" update -q >&2
    (cd "$work" && apt-get "${opts[@]}" download libvulkan-dev spirv-headers >&2)
    mkdir -p "$prefix"
    for deb in "$work"/*.deb; do dpkg -x "$deb" "$prefix"; done
fi
echo "$prefix/usr"
