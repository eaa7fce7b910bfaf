"""``python -m qp_desktop``."""

import sys

from qp_desktop.main import main

sys.exit(main())
