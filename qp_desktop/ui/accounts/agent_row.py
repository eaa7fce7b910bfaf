"""One agent's row on the Accounts page: its name and host, its status badge (the tooltip
lists each directory's last sync) and its Sync now button."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy

from qp_desktop.services.tenant_client import Agent
from qp_desktop.ui.accounts.formatting import _colours, _escape, agent_status_text, sync_text


def agent_row(index: int, agent: Agent,
              on_sync: Callable[[], object]) -> tuple[QLabel, QHBoxLayout, QPushButton]:
    """The label, the status-and-button layout, and the Sync now button of one agent."""
    c = _colours()
    name = QLabel(f"<b>{_escape(agent.name)}</b>"
                  + (f" &nbsp;<span style='color:{c.muted}'>"
                     f"{_escape(agent.hostname)}</span>" if agent.hostname else ""))
    name.setObjectName(f"agent_name_{index}")
    online = agent.status == "online"
    status = QLabel(agent_status_text(agent))
    status.setObjectName(f"agent_status_{index}")
    status.setProperty("role", "badge")
    status.setProperty("kind", "ok" if online else "neutral")
    status.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    if agent.directories:
        status.setToolTip(sync_text(agent))
    sync = QPushButton("Sync now")
    sync.setObjectName(f"agent_sync_{index}")
    sync.setToolTip(f"Ask {agent.name} to report its directories\u2019 accounts now.")
    sync.clicked.connect(lambda _=False: on_sync())
    right = QHBoxLayout()
    right.setSpacing(10)
    right.addWidget(status)
    right.addWidget(sync)
    right.addStretch(1)
    return name, right, sync
