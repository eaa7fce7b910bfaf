"""The test helpers' tenant processes behave as ``python -m qp_tenant`` started afresh would.

They are forked from a process that imported the tenant already (tests/support/forkserver.py);
every other test trusts that a forked tenant is still its own process with its own
environment, output, signals and exit status.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support import forkserver
from tests.support.pipeline import wait_for
from tests.support.processes import TenantProcess


def test_a_forked_tenant_is_its_own_process_with_its_own_environment(tmp_path: Path) -> None:
    tenant = TenantProcess(tmp_path / "data", env={"QP_PUBLIC_URL": "https://qp.example.test"})
    tenant.start()
    try:
        assert isinstance(tenant.proc, forkserver.ForkedProcess)
        assert tenant.proc.pid != os.getpid()
        # The child runs on the environment asked for, not the fork server's.
        wait_for(lambda: "webhook base https://qp.example.test" in tenant.log_text(), 30,
                 "the tenant's start-up log line with the public URL it was given")
        assert (tmp_path / "data" / "qp-tenant.db").is_file()
    finally:
        assert tenant.stop() == 0  # SIGTERM: the tenant's graceful exit, status 0
    assert tenant.proc.poll() == 0


def test_a_killed_forked_tenant_reports_the_signal_as_subprocess_does(tmp_path: Path) -> None:
    tenant = TenantProcess(tmp_path / "data")
    tenant.start()
    tenant.kill()
    assert tenant.proc is not None and tenant.proc.returncode == -signal.SIGKILL


def test_a_forked_cli_run_gets_its_stdin_exit_status_and_output(tmp_path: Path) -> None:
    maker = TenantProcess(tmp_path / "data")
    maker.cli("migrate")
    maker.create_tenant("acme", "Acme MSP")
    refused = maker.cli("create-user", "--tenant", "nope", "--email", "a@b.test",
                        "--password-stdin", input="a long enough password\n", check=False)
    assert refused.returncode != 0
    assert "nope" in refused.stderr
    made = maker.cli("create-user", "--tenant", "acme", "--email", "a@b.test",
                     "--password-stdin", input="a long enough password\n")
    assert made.returncode == 0


def test_without_the_fork_server_a_fresh_interpreter_starts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QP_TEST_FORKSERVER", "0")
    proc = forkserver.popen([sys.executable, "-m", "qp_tenant", "--help"], env=dict(os.environ))
    out, _ = proc.communicate(timeout=60)
    assert not isinstance(proc, forkserver.ForkedProcess)
    assert proc.returncode == 0 and "serve" in out
