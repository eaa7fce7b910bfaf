"""``qp-tenant``: serve, migrate, create-tenant, create-user, rotate-key, revoke-agent (the
flags and ``QP_*`` variables are listed in README.md)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qp_tenant import __version__
from qp_tenant.config import Settings
from qp_tenant.logging_setup import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qp-tenant", description="QP tenant service.")
    parser.add_argument("--version", action="version", version=f"qp-tenant {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="data folder (QP_DATA_DIR)")
    common.add_argument("--database-url", help="SQLAlchemy URL (QP_DATABASE_URL)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the HTTP service")
    serve.add_argument("--host", help="address to listen on (QP_HOST)")
    serve.add_argument("--port", type=int, help="port, 0 for a free one (QP_PORT)")
    serve.add_argument("--public-url", help="URL IT Glue reaches this tenant at (QP_PUBLIC_URL)")

    sub.add_parser("migrate", parents=[common], help="bring the database schema up to date")

    tenant = sub.add_parser("create-tenant", parents=[common], help="create a tenant (an MSP)")
    tenant.add_argument("--slug", required=True)
    tenant.add_argument("--name", required=True)

    user = sub.add_parser("create-user", parents=[common], help="create a user in a tenant")
    user.add_argument("--tenant", required=True, help="the tenant's slug")
    user.add_argument("--email", required=True)
    user.add_argument("--name", default="")
    user.add_argument("--role", default="technician", choices=["admin", "technician", "viewer"])
    user.add_argument("--password-stdin", action="store_true",
                      help="read the password from the first line of standard input")

    revoke = sub.add_parser(
        "revoke-agent", parents=[common],
        help="revoke an agent: its credential is refused and its jobs go to another agent")
    revoke.add_argument("--tenant", required=True, help="the tenant's slug")
    revoke.add_argument("--agent", required=True, type=int, help="the agent's id")

    rotate = sub.add_parser(
        "rotate-key", parents=[common],
        help="re-encrypt stored secrets and re-hash workflow tokens under the current key",
        description="Move every stored secret onto the current secret key (QP_SECRET_KEY), "
                    "reading old values with the keys in QP_PREVIOUS_SECRET_KEYS. Keys are "
                    "never taken from the command line.")
    rotate.add_argument(
        "--new-key-file", action="store_true",
        help="for installs without QP_SECRET_KEY: write a new secret.key in the data folder, "
             "keep the old key in secret.key.previous, then re-encrypt (stop qp-tenant first)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "database_url", "public_url"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


# What the data folder holds that only its owner may read: the SQLite database with its WAL
# and shared-memory files, and the logs (the key files look after themselves, see crypto.py).
_PRIVATE_FILES = ("qp-tenant.db", "qp-tenant.db-wal", "qp-tenant.db-shm", "logs/qp-tenant.log*")


def keep_private(data_dir: Path) -> None:
    """Make everything this process creates owner-only, and tighten what exists already.

    A umask of 077 covers files made later by SQLite (-wal, -shm), log rotation and the
    database itself; folders and files from before it (or made by a service manager) are
    chmod-ed to 0700 and 0600.
    """
    os.umask(0o077)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        for folder in (data_dir, data_dir / "logs"):
            if folder.is_dir() and folder.stat().st_mode & 0o077:
                folder.chmod(0o700)
        for pattern in _PRIVATE_FILES:
            for path in data_dir.glob(pattern):
                if path.is_file() and path.stat().st_mode & 0o077:
                    path.chmod(0o600)
    except OSError as exc:
        # Not ours to change (e.g. a folder owned by another user): carry on, but say so.
        print(f"qp-tenant: could not restrict access to {data_dir}: {exc.strerror}",
              file=sys.stderr)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise SystemExit("qp-tenant: the two passwords differ; nothing was created.")
    return first


async def _with_db(settings: Settings, action: Any) -> Any:
    from qp_tenant.db import create_engine, migrate, session_factory

    engine = create_engine(settings)
    try:
        await migrate(engine)
        async with session_factory(engine)() as session:
            result = await action(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        print(f"qp-tenant: setting {field.upper()!s}: {first['msg']}", file=sys.stderr)
        return 2
    from qp_tenant.errors import ApiError

    keep_private(settings.data_dir)
    try:
        if args.command == "serve":
            from qp_tenant.server import serve

            configure_logging(settings.data_dir / "logs", settings.log_level)
            return _run(serve(settings))
        configure_logging(None, "WARNING")
        if args.command == "migrate":
            asyncio.run(_with_db(settings, _noop))
            print("database is up to date")
            return 0
        if args.command == "create-tenant":
            from qp_tenant.domain.auth import create_tenant

            async def make_tenant(session: Any) -> Any:
                return await create_tenant(session, args.slug, args.name)

            tenant = asyncio.run(_with_db(settings, make_tenant))
            print(f"created tenant {tenant.slug} ({tenant.name})")
            return 0
        if args.command == "create-user":
            password = _read_password(args.password_stdin)
            return _create_user(settings, args, password)
        if args.command == "revoke-agent":
            return _revoke_agent(settings, args.tenant, args.agent)
        if args.command == "rotate-key":
            return _rotate_key(settings, args.new_key_file)
    except ApiError as exc:
        print(f"qp-tenant: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def _run(coro: Any) -> Any:
    """Run the server on uvloop where it is installed (several times faster I/O)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def _noop(_: Any) -> None:
    return None


def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> int:
    from qp_tenant.domain.auth import create_user

    async def make_user(session: Any) -> Any:
        tenant = await _tenant_by_slug(session, args.tenant)
        return await create_user(session, tenant, args.email, password, args.role, args.name)

    user = asyncio.run(_with_db(settings, make_user))
    print(f"created {user.role} {user.email} in {args.tenant}")
    return 0


async def _tenant_by_slug(session: Any, slug: str) -> Any:
    from sqlalchemy import select

    from qp_tenant.errors import ApiError
    from qp_tenant.models import Tenant

    tenant = (await session.scalars(select(Tenant).where(Tenant.slug == slug))).first()
    if tenant is None:
        raise ApiError(404, "unknown_tenant",
                       f"There is no tenant {slug!r}; create it with create-tenant.")
    return tenant


def _revoke_agent(settings: Settings, slug: str, agent_id: int) -> int:
    """``revoke-agent``: the same as ``DELETE /api/v1/agents/{id}``. A running tenant notices
    within its agents' poll interval (QP_AGENT_POLL_FALLBACK_SECONDS)."""
    from qp_tenant.domain.agents import revoke_agent

    async def revoke(session: Any) -> Any:
        tenant = await _tenant_by_slug(session, slug)
        return await revoke_agent(session, tenant.id, agent_id, "the qp-tenant command line")

    agent, handed_back = asyncio.run(_with_db(settings, revoke))
    print(f"agent {agent.id} ({agent.name}) is revoked; {len(handed_back)} unfinished job(s) "
          "handed back to the pipeline")
    return 0


class _KeyFileError(Exception):
    pass


def _rotate_key(settings: Settings, new_key_file: bool) -> int:
    """``rotate-key``: see qp_tenant/rotation.py and docs/deployment.md, "Rotating it"."""
    from sqlalchemy.exc import DBAPIError

    from qp_tenant import crypto as keys
    from qp_tenant.db import create_engine, migrate, session_factory
    from qp_tenant.rotation import UndecryptableSecrets, rotate_secrets

    key_path = settings.data_dir / keys.KEY_FILE_NAME
    previous_path = settings.data_dir / keys.PREVIOUS_KEY_FILE_NAME
    if settings.secret_key:
        if new_key_file:
            print("qp-tenant: QP_SECRET_KEY is set, so there is no key file to replace: put the "
                  "new key in QP_SECRET_KEY and the old one in QP_PREVIOUS_SECRET_KEYS, restart "
                  "the processes, then run rotate-key without --new-key-file.", file=sys.stderr)
            return 2
        key_names = "QP_SECRET_KEY or any key in QP_PREVIOUS_SECRET_KEYS"
    else:
        if not key_path.exists():
            print(f"qp-tenant: there is no key to rotate: QP_SECRET_KEY is not set and "
                  f"{key_path} does not exist.", file=sys.stderr)
            return 1
        key_names = (f"{key_path.name} or any key in {previous_path.name} or "
                     f"QP_PREVIOUS_SECRET_KEYS")
    current = keys.load_or_create_master_key(settings.secret_key, settings.data_dir)
    previous = keys.load_previous_keys(settings.secret_key, settings.previous_secret_keys,
                                       settings.data_dir)
    new_key: bytes | None = None
    if new_key_file:
        new_key = keys.new_master_key()
        previous, current = [current, *previous], new_key
    crypto = keys.Crypto(current, previous)

    def switch_key_files() -> None:
        """Old key into secret.key.previous first, then the new secret.key: at every moment
        each key that may still be needed is on disk."""
        if new_key is None:
            return
        try:
            kept = keys.read_key_lines(previous_path)
            old = previous[0]
            keys.write_key_file(previous_path, [*kept, old] if old not in kept else kept)
            keys.write_key_file(key_path, [new_key])
        except OSError as exc:
            raise _KeyFileError(f"{exc.strerror}: {exc.filename}") from None

    async def run() -> Any:
        engine = create_engine(settings)
        try:
            await migrate(engine)
            async with session_factory(engine)() as session:
                result = await rotate_secrets(session, crypto)
                switch_key_files()  # before the commit: a crash after it leaves both keys
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(run())
    except UndecryptableSecrets as exc:
        print(f"qp-tenant: {exc.describe(key_names)}", file=sys.stderr)
        return 1
    except _KeyFileError as exc:
        print(f"qp-tenant: could not write the key files ({exc}); the database was not "
              f"changed, and the key in use is still in {key_path.name} or "
              f"{previous_path.name}.", file=sys.stderr)
        return 1
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "error"
        print(f"qp-tenant: the database refused the rotation ({type(exc.orig).__name__}: "
              f"{reason}); nothing was changed.", file=sys.stderr)
        return 1
    summary = (f"re-encrypted {result.reencrypted} secrets, re-hashed "
               f"{result.rehashed_tokens} workflow tokens")
    if result.rehashed_jobs:
        summary += f" and {result.rehashed_jobs} in-flight reset hashes"
    if new_key is not None:
        print(f"wrote a new {key_path} (the old key is kept in {previous_path}); {summary}.")
        print("Start qp-tenant now (a process that was still running has only the old key: "
              "restart it and run rotate-key once more). Keep the old key with the backups "
              f"made before now, then delete {previous_path}.")
    elif settings.secret_key:
        print(f"{summary}; you can now remove QP_PREVIOUS_SECRET_KEYS (then restart the "
              "processes one by one)")
    else:
        print(f"{summary}; you can now delete {previous_path} (keep the old key with the "
              "backups made before now)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
