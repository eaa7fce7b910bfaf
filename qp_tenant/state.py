"""What one tenant process holds while it runs: settings, database, keys, brokers, clients."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from qp_tenant.config import Settings
from qp_tenant.crypto import Crypto
from qp_tenant.domain.auth import TokenPolicy
from qp_tenant.domain.events import EventBroker
from qp_tenant.domain.microsoft365 import Microsoft365
from qp_tenant.domain.pipeline import ResetPipeline
from qp_tenant.domain.scheduler import AlertScheduler
from qp_tenant.domain.stream import EventTails
from qp_tenant.domain.throttle import LoginThrottle
from qp_tenant.domain.watcher import ITGlueWatcher
from qp_tenant.domain.webhook import TriggerIngest


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    crypto: Crypto
    broker: EventBroker
    ingest: TriggerIngest
    throttle: LoginThrottle
    token_policy: TokenPolicy
    http: httpx.AsyncClient
    tails: EventTails  # the SSE stream's shared tails, one per tenant
    public_url: str = ""
    shutting_down: bool = field(default=False)
    alerts: AlertScheduler | None = None
    pipeline: ResetPipeline | None = None
    m365: Microsoft365 | None = None
    watcher: ITGlueWatcher | None = None
