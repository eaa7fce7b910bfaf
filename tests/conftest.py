"""Fixtures shared by every suite: a real tenant process and the IT Glue emulator."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from tests.support import postgres
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.support.tenant_api import ADMIN_EMAIL, ADMIN_PASSWORD

__all__ = ["ADMIN_EMAIL", "ADMIN_PASSWORD", "ITGLUE_KEY"]
ITGLUE_KEY = "ITG.0123456789abcdef0123456789abcdef"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db", choices=("sqlite", "postgresql"), default=os.environ.get("QP_TEST_DB", "sqlite"),
        help="database behind the tenant fixtures (default: sqlite, or $QP_TEST_DB)",
    )


# The longest tests (a minute or more each on two cores), started first: pytest-xdist hands
# tests out in collection order, and one of these handed out last keeps one worker busy
# while the other has nothing left to do.
_LONGEST_FIRST = ("tests/tenant/test_fuzz.py", "tests/desktop/test_real_windows.py",
                  "tests/cluster/", "tests/test_")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def longest_first(item: pytest.Item) -> int:
        return 0 if item.nodeid.startswith(_LONGEST_FIRST) else 1

    items.sort(key=longest_first)  # stable: the rest keep their order


def pytest_report_header(config: pytest.Config) -> str:
    return f"tenant database: {config.getoption('--db')}"


@pytest.fixture(scope="session")
def db_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: what the tenant fixtures run on (``--db``)."""
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """A PostgreSQL server on a free loopback port for the whole run (fails if not installed)."""
    server = postgres.PostgresServer()
    server.start()
    postgres.register(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def itglue_emulator() -> Iterator[EmulatorProcess]:
    """A running IT Glue emulator that accepts ``ITGLUE_KEY`` and holds demo data.

    Shared by the session: tests that change its data use their own emulator.
    """
    emu = EmulatorProcess(api_key=ITGLUE_KEY, seed_demo=True)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    """An IT Glue emulator of the test's own (accepts ``ITGLUE_KEY``, holds its demo data):
    for tests that change IT Glue data."""
    emu = EmulatorProcess(api_key=ITGLUE_KEY)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


# Nearly every test signs in as the template's admin. The product verifies an argon2id hash
# by the parameters written in it, so the admin's hash is re-made with cheap ones (its
# default costs ~0.3 s of CPU per sign-in); every password the product hashes in a test
# (create-user, set-up, password changes) still gets the product's own parameters.
_CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def _cheapen_admin_hash(folder: Path, server: postgres.PostgresServer | None) -> None:
    cheap = _CHEAP_HASHER.hash(ADMIN_PASSWORD)
    sql = "UPDATE users SET password_hash = ? WHERE email = ? RETURNING id"
    if server is None:
        with contextlib.closing(sqlite3.connect(folder / "qp-tenant.db")) as db, db:
            updated = db.execute(sql, (cheap, ADMIN_EMAIL)).fetchall()
    else:
        url = postgres.database_url_for(folder)
        assert url is not None
        updated = postgres.query(url, sql, cheap, ADMIN_EMAIL)
    assert len(updated) == 1, updated


def build_template(folder: Path, server: postgres.PostgresServer | None) -> Path:
    """Make ``folder`` a tenant data folder with the schema, tenant ``acme`` and its admin.

    With a PostgreSQL ``server`` the folder names a template database; every copy of the
    folder that a :class:`TenantProcess` starts on gets a fresh clone of it.
    """
    if server is not None:
        postgres.write_marker(folder, server, server.create_database(prefix="qp_template"),
                              "live")
    maker = TenantProcess(folder)
    maker.cli("migrate")
    maker.create_tenant("acme", "Acme MSP")
    maker.create_user("acme", ADMIN_EMAIL, ADMIN_PASSWORD)
    _cheapen_admin_hash(folder, server)
    if server is not None:
        marker = postgres.read_marker(folder)
        assert marker is not None
        postgres.write_marker(folder, server, marker["database"], "template")
    return folder


@pytest.fixture(scope="session")
def tenant_template(tmp_path_factory: pytest.TempPathFactory, db_kind: str,
                    request: pytest.FixtureRequest) -> Path:
    """A data folder with the schema, tenant ``acme`` and its admin, made once per run.

    On ``--db postgresql`` the folder carries a marker naming a template database, and every
    copy of the folder gets its own fresh database (see tests/support/postgres.py).
    """
    folder = tmp_path_factory.mktemp("tenant-template")
    server = request.getfixturevalue("postgres_server") if db_kind == "postgresql" else None
    return build_template(folder, server)


@pytest.fixture
def tenant_proc(tmp_path: Path, tenant_template: Path,
                itglue_emulator: EmulatorProcess) -> Iterator[TenantProcess]:
    """A running tenant (tenant ``acme``, admin ``ADMIN_EMAIL``) pointed at the emulator.

    Each test gets its own copy of the template data folder, so tests never share state.
    """
    data = tmp_path / "tenant-data"
    shutil.copytree(tenant_template, data)
    tenant = TenantProcess(
        data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url, "QP_PUBLIC_URL": "",
                   # The watcher reads the shared emulator: only its own tests turn it on.
                   "QP_ITGLUE_WATCH_SECONDS": "0"},
    )
    tenant.start()
    try:
        yield tenant
    finally:
        tenant.stop()


@pytest.fixture(scope="session")
def samba_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Samba AD domain provisioned once per run (tests/support/samba.py).

    Provisioning costs tens of seconds of CPU, so under pytest-xdist the workers share one:
    the first to need it provisions it under a lock in the run's common temporary folder,
    the others wait for it. Tests only ever start copies of it.
    """
    from tests.support import samba

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return samba.provision(tmp_path_factory.mktemp("samba") / "template")
    shared = tmp_path_factory.getbasetemp().parent  # this run's folder, one per worker below
    template = shared / "samba-template"
    with open(shared / "samba-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "samba-template.done").exists():
            shutil.rmtree(template, ignore_errors=True)  # a failed attempt's leftovers
            samba.provision(template)
            (shared / "samba-template.done").touch()
    return template


@pytest.fixture
def samba_dc(samba_template: Path, tmp_path: Path) -> Iterator[Any]:
    """A running copy of the session's domain controller, on its own loopback address."""
    from tests.support.samba import SambaDC

    dc = SambaDC.copy_of(samba_template, tmp_path / "samba-dc")
    dc.start()
    try:
        yield dc
    finally:
        dc.stop()
