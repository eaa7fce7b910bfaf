"""Routes: the tenant's alert settings (recipients and expiry warning days)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from qp_tenant.api.bounds import Body, documented_schema
from qp_tenant.api.deps import AdminDep, SessionDep, StateDep, ViewerDep
from qp_tenant.api.responses import ROLE, USER, AlertsOut, answers
from qp_tenant.domain import alerts

router = APIRouter(prefix="/api/v1/alerts")


class AlertsBody(Body):
    """Fields left out keep their current value."""

    # Each an email address (blank ones are skipped); the domain parses them.
    recipients: list[str] | None = Field(None, max_length=100)
    expiry_warning_days: list[Annotated[int, documented_schema(
        minimum=0, maximum=alerts.MAX_WARNING_DAY)]] | None = Field(None, max_length=100)


def _view(state: Any, config: alerts.AlertConfig) -> dict[str, Any]:
    return {**config.to_dict(), "smtp_configured": bool(state.settings.smtp_host.strip()),
            "limits": alerts.limits()}


@router.get("", response_model=None, responses=answers(AlertsOut, *USER))
async def get_alerts(principal: ViewerDep, state: StateDep,
                     session: SessionDep) -> dict[str, Any]:
    config = await alerts.get_alert_config(session, principal.tenant.id,
                                           state.settings.expiry_warning_days)
    return _view(state, config)


@router.put("", response_model=None, responses=answers(AlertsOut, *ROLE, 422))
async def put_alerts(body: AlertsBody, principal: AdminDep, state: StateDep,
                     session: SessionDep) -> dict[str, Any]:
    config = await alerts.put_alert_config(
        session, principal.tenant.id, state.settings.expiry_warning_days,
        recipients=body.recipients, expiry_warning_days=body.expiry_warning_days,
    )
    if state.alerts is not None:
        state.alerts.wake()  # new thresholds may already be reached
    return _view(state, config)
