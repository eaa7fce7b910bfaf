"""PyInstaller entry point of the ``qp-desktop`` bundle.

The same executable is the app and, with ``-m qp_tenant ...``, the embedded tenant's child
process (see ``qp_desktop/services/bundle.py``); that check runs before Qt is imported, so
the child starts quickly.
"""

import sys

from qp_desktop.services.bundle import run_module_if_requested

code = run_module_if_requested()
if code is None:
    from qp_desktop.main import main

    code = main()
sys.exit(code)
