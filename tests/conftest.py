"""Fixtures shared by every suite: a real tenant process and the IT Glue emulator."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import EmulatorProcess, TenantProcess

ADMIN_EMAIL = "admin@acme.test"
ADMIN_PASSWORD = "correct horse battery staple"
ITGLUE_KEY = "ITG.0123456789abcdef0123456789abcdef"


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


@pytest.fixture(scope="session")
def tenant_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the schema, tenant ``acme`` and its admin, made once per run."""
    folder = tmp_path_factory.mktemp("tenant-template")
    maker = TenantProcess(folder)
    maker.cli("migrate")
    maker.create_tenant("acme", "Acme MSP")
    maker.create_user("acme", ADMIN_EMAIL, ADMIN_PASSWORD)
    return folder


@pytest.fixture
def tenant_proc(tmp_path: Path, tenant_template: Path,
                itglue_emulator: EmulatorProcess) -> Iterator[TenantProcess]:
    """A running tenant (tenant ``acme``, admin ``ADMIN_EMAIL``) pointed at the emulator.

    Each test gets its own copy of the template data folder, so tests never share state.
    """
    data = tmp_path / "tenant-data"
    shutil.copytree(tenant_template, data)
    tenant = TenantProcess(
        data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url, "QP_PUBLIC_URL": ""},
    )
    tenant.start()
    try:
        yield tenant
    finally:
        tenant.stop()
