"""IT Glue: the async REST API client the tenant uses, and an emulator for tests and demos."""

from qp_tenant.itglue.client import (
    REGION_BASE_URLS,
    ITGlueAuthError,
    ITGlueClient,
    ITGlueError,
    ITGlueNotFound,
    ITGluePasswordAccessDenied,
    ITGlueRateLimited,
    ITGlueUnreachable,
    ITGlueValidationError,
    Organization,
    Password,
    RateLimiter,
    base_url_for,
)

__all__ = [
    "REGION_BASE_URLS",
    "ITGlueAuthError",
    "ITGlueClient",
    "ITGlueError",
    "ITGlueNotFound",
    "ITGluePasswordAccessDenied",
    "ITGlueRateLimited",
    "ITGlueUnreachable",
    "ITGlueValidationError",
    "Organization",
    "Password",
    "RateLimiter",
    "base_url_for",
]
