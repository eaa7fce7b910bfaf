"""Child processes that run our own Python modules, from a venv or a PyInstaller bundle.

Outside a bundle a child is ``<python> -m <module> ...``. Inside a one-folder bundle
``sys.executable`` is the bundle's ``qp-desktop`` executable, not a Python; so that executable
understands the same ``-m <module> ...`` form for the few modules the app starts itself
(:func:`run_module_if_requested`, called before anything imports Qt). The command line
keeps its shape either way, which is also what the stale-child check in ``local_tenant``
looks for.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# module -> "module:function" taking argv (without the program name) and returning the
# exit code. Only these may be started through the bundle's executable.
CHILD_MODULES = {
    "qp_tenant": "qp_tenant.cli:main",
    "qp_tenant.itglue.emulator": "qp_tenant.itglue.emulator:main",
    "qp_tenant.m365.emulator": "qp_tenant.m365.emulator:main",
}


def is_frozen() -> bool:
    """True inside a PyInstaller (or similar) bundle."""
    return bool(getattr(sys, "frozen", False))


def module_command(module: str, *args: str) -> list[str]:
    """The argv that runs ``python -m module args...`` here, bundled or not."""
    if is_frozen() and module not in CHILD_MODULES:
        raise ValueError(f"{module} cannot be started from the bundle")
    return [sys.executable, "-m", module, *args]


def run_module_if_requested(argv: Sequence[str] | None = None) -> int | None:
    """In a bundle, run ``-m <module> args...`` (see :data:`CHILD_MODULES`) and return its
    exit code; return None when ``argv`` asks for no such thing (start the app).

    Does nothing outside a bundle: there ``python -m`` is the real thing.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not is_frozen() or len(args) < 2 or args[0] != "-m":
        return None
    module, rest = args[1], args[2:]
    target = CHILD_MODULES.get(module)
    if target is None:
        print(f"qp-desktop: cannot run module {module!r} from the bundle", file=sys.stderr)
        return 2
    module_name, _, function = target.partition(":")
    sys.argv = [module, *rest]
    main = getattr(importlib.import_module(module_name), function)
    return int(main(rest) or 0)
