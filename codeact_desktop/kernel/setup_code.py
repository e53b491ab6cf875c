"""What a new kernel starts with before any of the conversation's code: an environment
with fresh configuration folders, common imports warmed while the user types, then the
Python the app runs inside it (the move into the workspace with the conversation's own
packages on the path).
"""

from __future__ import annotations

from .sandbox import RuntimeDir

# Imported by the restricted launcher before ipykernel starts (``restricted_start.warm_up``):
# the kernel's process does it at once instead of waiting for the app to connect and ask,
# and the app's Python lock, busy building the window at that moment, is not in the way.
WARM_UP_MODULES = ("numpy", "pandas", "matplotlib", "matplotlib.pyplot")

ENTER_WORKSPACE = """
def __codeact_enter(workspace, packages, layers, isolated):
    import os, site, sys
    os.chdir(workspace)
    if packages:
        # Processes the code starts (`!python`, multiprocessing's spawn) see them too.
        os.environ["PYTHONPATH"] = packages
        before = list(sys.path)
        if isolated:
            site.addsitedir(packages)  # its .pth files too: this kernel is restricted
        elif packages not in sys.path:
            sys.path.append(packages)
        added = [p for p in sys.path if p not in before]
        rest = [p for p in sys.path if p not in added]
        # Never ahead of the standard library; where isolated, ahead of the base layer, so
        # what pip installed here shadows it; elsewhere last, so it shadows nothing.
        at = next((i for i, p in enumerate(rest) if p in layers), len(rest)) if isolated else len(rest)
        sys.path[:] = rest[:at] + added + rest[at:]
__codeact_enter({workspace!r}, {packages!r}, {layers!r}, {isolated!r})
del __codeact_enter
"""


def enter_workspace_code(workspace: str, packages: str, layers: list[str], isolated: bool) -> str:
    """Run once the kernel is up (``ConversationKernel._enter_workspace`` says why)."""
    return ENTER_WORKSPACE.format(workspace=workspace, packages=packages, layers=layers, isolated=isolated)


def start_environment(env: dict[str, str], runtime: RuntimeDir) -> dict[str, str]:
    """The kernel's environment for this start: IPython's and Jupyter's configuration
    folders are new and empty, so no config file or startup script the code left in its
    home runs when the next kernel starts."""
    fresh = {name: runtime.tmp / folder for name, folder in
             (("IPYTHONDIR", "ipython"), ("JUPYTER_CONFIG_DIR", "jupyter-config"),
              ("JUPYTER_DATA_DIR", "jupyter-data"))}
    for folder in fresh.values():
        folder.mkdir(exist_ok=True)
    return {**env, **{name: str(folder) for name, folder in fresh.items()}}
