"""``qp-tenant``: serve, migrate, create-tenant, create-user (see DESIGN.md, Command lines)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
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
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "database_url", "public_url"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


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
    from sqlalchemy import select

    from qp_tenant.domain.auth import create_user
    from qp_tenant.errors import ApiError
    from qp_tenant.models import Tenant

    async def make_user(session: Any) -> Any:
        tenant = (await session.scalars(select(Tenant).where(Tenant.slug == args.tenant))).first()
        if tenant is None:
            raise ApiError(404, "unknown_tenant",
                           f"There is no tenant {args.tenant!r}; create it with create-tenant.")
        return await create_user(session, tenant, args.email, password, args.role, args.name)

    user = asyncio.run(_with_db(settings, make_user))
    print(f"created {user.role} {user.email} in {args.tenant}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
