"""The qp-agent command line: enroll against a tenant, run until SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from qp_agent.cli import main
from qp_common.redact import RedactingFilter
from tests.support.secret_text import CASES, leaks, logging_script

from .conftest import AGENT_TOKEN, EXPIRED_CODE, GOOD_CODE, USED_CODE, FakeTenant


def enroll(tenant_url: str, code: str, credential_file: Path, *extra: str) -> int:
    return main(
        [
            "enroll",
            "--tenant",
            tenant_url,
            "--code",
            code,
            "--credential-file",
            str(credential_file),
            "--no-keyring",
            *extra,
        ]
    )


def test_enroll_stores_the_credential_in_a_private_file_and_never_prints_the_token(
    tenant: FakeTenant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credential_file = tmp_path / "agent" / "credential.json"

    status = enroll(tenant.url, GOOD_CODE, credential_file, "--name", "dc1")

    out, err = capsys.readouterr()
    assert status == 0
    assert "Enrolled as agent agent-7 (dc1)" in out
    assert AGENT_TOKEN not in out + err
    assert stat.S_IMODE(credential_file.stat().st_mode) == 0o600
    assert json.loads(credential_file.read_text()) == {
        "tenant_url": tenant.url,
        "agent_id": "agent-7",
        "agent_token": AGENT_TOKEN,
    }
    sent = tenant.enrollments.get_nowait()
    assert sent["code"] == GOOD_CODE and sent["name"] == "dc1" and sent["hostname"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (USED_CODE, "This enrollment code was already used."),
        (EXPIRED_CODE, "This enrollment code has expired."),
        ("NOPE", "This enrollment code is not valid."),
    ],
)
def test_a_refused_code_shows_the_tenants_message(
    tenant: FakeTenant,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: str,
    message: str,
) -> None:
    status = enroll(tenant.url, code, tmp_path / "c.json")

    assert status == 1
    assert capsys.readouterr().err.strip() == (
        f"qp-agent: the tenant refused the enrollment: {message}"
    )
    assert not (tmp_path / "c.json").exists()


def test_an_unreachable_tenant_is_reported(
    unused_port_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert enroll(unused_port_url, GOOD_CODE, tmp_path / "c.json") == 1
    assert f"Cannot reach the tenant at {unused_port_url}" in capsys.readouterr().err


def test_an_untrusted_tls_certificate_is_reported_and_a_ca_file_fixes_it(
    tls_tenant: tuple[FakeTenant, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant, cert = tls_tenant

    assert enroll(tenant.url, GOOD_CODE, tmp_path / "c.json") == 1
    err = capsys.readouterr().err
    assert f"The tenant's TLS certificate at {tenant.url} could not be verified" in err
    assert "--ca-file" in err

    assert enroll(tenant.url, GOOD_CODE, tmp_path / "c.json", "--ca-file", str(cert)) == 0
    assert json.loads((tmp_path / "c.json").read_text())["tenant_url"] == tenant.url


def test_plain_http_to_a_remote_tenant_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert enroll("http://tenant.example.com", GOOD_CODE, tmp_path / "c.json") == 2
    assert "must use https://" in capsys.readouterr().err
    # A name that merely starts like a loopback address is somebody else's computer.
    assert enroll("http://127.attacker.example", GOOD_CODE, tmp_path / "c.json") == 2
    assert "must use https://" in capsys.readouterr().err


def test_run_with_a_bad_config_exits_2_with_the_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[[directory]]\nname = "x"\nkind = "openldap"\nbind_password = "pw"\n')

    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}: [[directory]] #1 ('x'), key 'bind_password'" in err
    assert 'pw"' not in err


def test_run_without_enrollment_says_to_enroll(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[[directory]]\nname = "box"\nkind = "local"\n')

    status = main(["run", "--config", str(config), "--credential-file", str(tmp_path / "no")])

    assert status == 2
    assert "run qp-agent enroll" in capsys.readouterr().err


def test_run_heartbeats_and_stops_cleanly_on_sigterm(tenant: FakeTenant, tmp_path: Path) -> None:
    credential_file = tmp_path / "credential.json"
    assert enroll(tenant.url, GOOD_CODE, credential_file) == 0
    config = tmp_path / "agent.toml"
    config.write_text(
        f'credential_file = "{credential_file}"\nheartbeat_seconds = 0.5\n\n'
        '[[directory]]\nname = "box"\nkind = "local"\ndry_run = true\n'
        'allow_system_accounts = ["root"]\n'
    )
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    agent = subprocess.Popen(
        [sys.executable, "-m", "qp_agent", "run", "--config", str(config), "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        heartbeat = tenant.heartbeats.get(timeout=30)
        tenant.add_job(
            {
                "id": "j-1",
                "directory": "box",
                "kind": "local",
                "identity": "root",
                "password": "Cli-Secret-Pw-9",
            }
        )
        job_id, body = tenant.results.get(timeout=30)
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()

    assert heartbeat == {"directories": [{"name": "box", "kind": "local"}]}
    assert job_id == "j-1"
    assert body["ok"] is False and body["error"].startswith("Dry run (directory 'box')")
    assert agent.returncode == 0, err.decode()
    log = out.decode() + err.decode()
    assert "Received SIGTERM; stopping." in log
    assert "Agent stopped." in log
    assert AGENT_TOKEN not in log
    assert "Cli-Secret-Pw-9" not in log


def test_the_log_filter_redacts_tokens_and_known_secrets() -> None:
    import logging

    redactor = RedactingFilter({"hunter2"})
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "auth %s with %s and %s",
        ("Authorization: Bearer abc.def", "hunter2", "qpwt_0123456789abcdef"),
        None,
    )
    redactor.filter(record)
    # The workflow token keeps its last four characters: that is how the UI names it.
    assert record.getMessage() == (
        "auth Authorization: Bearer \u2026 with \u2026 and qpwt_\u2026cdef"
    )


def test_the_agents_log_shows_no_secret_in_lines_or_tracebacks(
    tenant: FakeTenant, tmp_path: Path
) -> None:
    workflow = "qpwt_Zk3vQ9xYw8rT2mN4bV6cX1aS5dF7gH0j"
    itg_key = "ITG.3f8a9c0d1e2b4a5f6c7d8e9f0a1b2c3d"
    basic = "dXNlcjpodW50ZXIy"
    code = "QPE-ABCD-EF23-GH45-JK67"
    credential_file = tmp_path / "credential.json"
    assert enroll(tenant.url, GOOD_CODE, credential_file) == 0
    # "chpasswd" is a folder whose path is full of secrets: running it fails unexpectedly
    # (PermissionError), and both the logged line and its traceback quote the path.
    chpasswd = tmp_path / workflow / itg_key / f"Authorization: Basic {basic}" / code
    chpasswd = chpasswd / "password=Hunter2-Pw"
    chpasswd.mkdir(parents=True)
    config = tmp_path / "agent.toml"
    config.write_text(
        f'credential_file = "{credential_file}"\nheartbeat_seconds = 0.5\n\n'
        f'[[directory]]\nname = "box"\nkind = "local"\nchpasswd = "{chpasswd}"\n'
        'allow_system_accounts = ["root"]\n'
    )
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    agent = subprocess.Popen(
        [sys.executable, "-m", "qp_agent", "run", "--config", str(config), "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        tenant.heartbeats.get(timeout=30)
        tenant.add_job(
            {"id": "j-2", "directory": "box", "kind": "local", "identity": "root",
             "password": "Cli-Secret-Pw-9"}
        )
        _, body = tenant.results.get(timeout=30)
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()

    assert body["ok"] is False
    log = out.decode() + err.decode()
    assert "unexpected failure in the local backend" in log
    assert "Traceback (most recent call last)" in log and "PermissionError" in log
    for secret in (workflow[5:], itg_key[4:], basic, code[4:], "Hunter2-Pw", AGENT_TOKEN,
                   "Cli-Secret-Pw-9"):
        assert secret not in log, secret
    assert f"qpwt_\u2026{workflow[-4:]}" in log  # the token is still named by its tail


def test_every_secret_bearing_text_is_masked_in_the_agents_log(tmp_path: Path) -> None:
    # The table of tests/common/test_redact.py, each row as a line and in a traceback,
    # through the agent's own logging (what `qp-agent run` sets up) in a fresh process.
    script = logging_script("""
        from qp_agent.cli import configure_logging
        configure_logging(verbose=True)
    """, "qp_agent.runner", tmp_path / "cases.json")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True)
    log = result.stderr
    assert log.count("Traceback (most recent call last)") == len(CASES)
    assert "Basic \u2026" in log and "ITG.\u2026" in log and "QPE-\u2026" in log
    assert leaks(log) == []
