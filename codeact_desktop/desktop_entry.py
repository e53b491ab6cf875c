"""The Linux menu entry a bundle's install.sh writes: the .desktop template with its Exec
line pointing at this install, quoted as the Desktop Entry specification asks (a folder
named "my apps" or holding a quote must still start the app).

    python -I -m codeact_desktop.desktop_entry TEMPLATE PROGRAM > codeact-desktop.desktop
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def exec_argument(path: str) -> str:
    """One Exec argument: in double quotes, with " ` $ \\ escaped inside them and % doubled;
    then the string value's own escaping doubles every backslash."""
    if "\n" in path or "\r" in path:
        raise ValueError("a program path with a line break cannot go into a desktop entry")
    quoted = '"' + re.sub(r'(["`$\\])', r"\\\1", path).replace("%", "%%") + '"'
    return quoted.replace("\\", "\\\\")


def desktop_entry(template: str, program: str) -> str:
    return template.replace("@EXEC@", exec_argument(program))


if __name__ == "__main__":
    sys.stdout.write(desktop_entry(Path(sys.argv[1]).read_text(encoding="utf-8"), sys.argv[2]))
