"""``python -m qp_desktop``."""

import sys

from qp_desktop.app import main

sys.exit(main())
