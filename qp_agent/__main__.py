"""``python -m qp_agent``: the same as the ``qp-agent`` command."""

from qp_agent.cli import main

raise SystemExit(main())
