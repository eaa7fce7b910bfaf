"""``qp-agent``: enroll with a tenant, then run reset jobs against local directories.

    qp-agent enroll --tenant URL --code CODE [--name NAME] [--credential-file PATH]
    qp-agent run --config FILE [--credential-file PATH] [--verbose]

This module is the composition root: it builds the HTTP client, the credential store, the
backends and the runner, and turns every expected failure into one sentence on stderr with
a non-zero exit status (2 for a usage or configuration problem, 1 for anything else).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from qp_agent import __version__
from qp_agent.backends import PasswordBackend, PasswordChangeFailed, build_backends
from qp_agent.client import (
    AgentClient,
    InsecureTenantURL,
    TenantRejected,
    TenantTLSError,
    TenantUnreachable,
    make_http_client,
)
from qp_agent.config import AgentConfig, ConfigError, load_config
from qp_agent.credentials import AgentCredential, CredentialError, CredentialStore
from qp_agent.runner import AgentCredentialRefused, AgentRunner
from qp_common.redact import RedactingFilter
from qp_common.urls import normalise_tenant_url

logger = logging.getLogger("qp_agent")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def configure_logging(verbose: bool, secrets: Iterable[str] = ()) -> RedactingFilter:
    """Log to stderr (a service manager's journal collects it), with secrets redacted: by
    shape, and the exact ``secrets`` (more can be added to the returned filter)."""
    redactor = RedactingFilter(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # httpx logs every request at INFO; a long-polling agent would drown its own log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    return redactor


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(
        prog="qp-agent",
        description="Applies password resets from a QP tenant to LDAP, Active Directory "
        "and local accounts.",
    )
    parser.add_argument("--version", action="version", version=f"qp-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    enroll = commands.add_parser("enroll", help="register this agent with a tenant")
    enroll.add_argument("--tenant", required=True, help="the tenant's URL (https)")
    enroll.add_argument("--code", required=True, help="the single-use enrollment code")
    enroll.add_argument("--name", help="the agent's name in the tenant (default: host name)")
    enroll.add_argument("--credential-file", type=Path, help="where to keep the credential")
    enroll.add_argument(
        "--no-keyring",
        action="store_true",
        help="keep the token in the credential file (mode 0600) even if a keyring works",
    )
    enroll.add_argument("--ca-file", help="CA certificate(s) that sign the tenant's TLS cert")

    run = commands.add_parser("run", help="apply reset jobs until stopped")
    run.add_argument("--config", required=True, type=Path, help="the agent's TOML config")
    run.add_argument("--credential-file", type=Path, help="overrides credential_file")
    run.add_argument("--verbose", "-v", action="store_true", help="log debug detail")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``qp-agent`` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        if args.command == "enroll":
            return _enroll(args)
        return _run(args)
    finally:
        # Leave logging as it was: main() is also called in-process (tests, wrappers).
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def _error(message: str) -> None:
    print(f"qp-agent: {message}", file=sys.stderr)


def _enroll(args: argparse.Namespace) -> int:
    configure_logging(verbose=False)
    try:
        tenant_url = normalise_tenant_url(args.tenant)
    except InsecureTenantURL as exc:
        _error(str(exc))
        return EXIT_USAGE
    hostname = socket.gethostname()
    name = args.name or hostname

    async def enroll() -> AgentCredential:
        async with make_http_client(tenant_url, ca_file=args.ca_file) as http:
            enrollment = await AgentClient(http).enroll(args.code, name, hostname)
        return AgentCredential(tenant_url, enrollment.agent_id, enrollment.agent_token)

    try:
        credential = asyncio.run(enroll())
    except TenantRejected as exc:
        _error(f"the tenant refused the enrollment: {exc.message}")
        return EXIT_FAILURE
    except TenantTLSError as exc:
        _error(str(exc))
        return EXIT_FAILURE
    except TenantUnreachable as exc:
        _error(str(exc))
        return EXIT_FAILURE

    store = CredentialStore(
        args.credential_file, keyring_backend=False if args.no_keyring else None
    )
    try:
        where = store.save(credential)
    except OSError as exc:
        _error(f"enrolled, but the credential could not be saved to {store.path}: {exc}")
        return EXIT_FAILURE
    print(f"Enrolled as agent {credential.agent_id} ({name}) at {tenant_url}.")
    print(f"The agent credential is stored in {where}.")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    redactor = configure_logging(args.verbose)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    store = CredentialStore(args.credential_file or config.credential_file)
    try:
        credential = store.load(
            normalise_tenant_url(config.tenant_url) if config.tenant_url else None
        )
        tenant_url = normalise_tenant_url(credential.tenant_url)
    except (CredentialError, InsecureTenantURL) as exc:
        _error(str(exc))
        return EXIT_USAGE
    try:
        backends = build_backends(config.directories)
    except PasswordChangeFailed as exc:
        _error(exc.reason)
        return EXIT_USAGE
    redactor.secrets.add(credential.agent_token)
    redactor.secrets.update(
        os.environ[d.bind_password_env]
        for d in config.directories
        if d.bind_password_env and os.environ.get(d.bind_password_env)
    )
    try:
        asyncio.run(_run_agent(config, credential, tenant_url, backends))
    except AgentCredentialRefused as exc:
        _error(str(exc))
        return EXIT_FAILURE
    return EXIT_OK


async def _run_agent(
    config: AgentConfig,
    credential: AgentCredential,
    tenant_url: str,
    backends: Mapping[str, PasswordBackend],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    ca_file = str(config.tenant_ca_file) if config.tenant_ca_file else None
    async with make_http_client(tenant_url, ca_file=ca_file) as http:
        runner = AgentRunner(
            AgentClient(http, credential.agent_token),
            backends,
            heartbeat_seconds=config.heartbeat_seconds,
            sync_interval_seconds=config.sync_interval_seconds,
        )
        await runner.run(stop)


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    logger.info("Received %s; stopping.", signal.Signals(signum).name)
    stop.set()
