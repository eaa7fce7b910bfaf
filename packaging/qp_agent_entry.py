"""PyInstaller entry point of the ``qp-agent`` bundle: the ``qp-agent`` command."""

import sys

from qp_agent.cli import main

sys.exit(main())
