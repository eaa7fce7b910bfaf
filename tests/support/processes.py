"""Real server processes for tests: the tenant service and the IT Glue emulator.

Each is started as a child process on 127.0.0.1 with ``--port 0``; the helper reads the
``listening on http://HOST:PORT`` line the server prints once it accepts connections.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from qp_common.wire import parse_listening_line
from tests.support import forkserver
from tests.support.postgres import database_url_for

STARTUP_TIMEOUT = 30.0


class ServerProcess:
    """A child process that prints ``listening on URL`` once it serves."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
        self.args = args
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | forkserver.ForkedProcess | None = None
        self.url = ""
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []

    def start(self) -> str:
        # Forked from a process that imported the server already, when it can be
        # (tests/support/forkserver.py): a fresh interpreter per start costs seconds of CPU.
        self.proc = forkserver.popen(self.args, self.env,
                                     str(self.cwd) if self.cwd is not None else None)
        found: queue.Queue[str] = queue.Queue()

        def pump(stream: IO[str], sink: list[str], announce: bool) -> None:
            for line in stream:
                sink.append(line)
                url = parse_listening_line(line) if announce else None
                if url:
                    found.put(url)

        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=pump, args=(self.proc.stdout, self.stdout_lines, True),
                         daemon=True).start()
        threading.Thread(target=pump, args=(self.proc.stderr, self.stderr_lines, False),
                         daemon=True).start()
        try:
            self.url = found.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            self.stop()
            raise RuntimeError(
                f"{self.args!r} did not print 'listening on' in {STARTUP_TIMEOUT}s; stderr:\n"
                + "".join(self.stderr_lines[-50:])
            ) from None
        return self.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def output(self) -> str:
        return "".join(self.stdout_lines) + "".join(self.stderr_lines)


class TenantProcess(ServerProcess):
    """``python -m qp_tenant serve`` on loopback with its own data folder."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, port: int = 0,
                 extra_args: list[str] | None = None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.base_env = {"QP_DATA_DIR": str(self.data_dir), **(env or {})}
        # A folder copied from a PostgreSQL template (see tests/support/postgres.py) names its
        # database in a marker file; the first process on a copy gets a fresh clone.
        if "QP_DATABASE_URL" not in self.base_env:
            url = database_url_for(self.data_dir)
            if url:
                self.base_env["QP_DATABASE_URL"] = url
        self.database_url = self.base_env.get("QP_DATABASE_URL", "")
        self.requested_port = port
        self.extra_args = extra_args or []
        super().__init__(self._serve_args(port), env=self.base_env)

    def _serve_args(self, port: int) -> list[str]:
        return [sys.executable, "-m", "qp_tenant", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--data-dir", str(self.data_dir), *self.extra_args]

    def restart(self, same_port: bool = True, kill: bool = False) -> str:
        """Stop (or kill -9) and start again on the same data, by default on the same port."""
        port = self.port if (same_port and self.url) else 0
        if kill:
            self.kill()
        else:
            self.stop()
        self.args = self._serve_args(port)
        self.stdout_lines, self.stderr_lines = [], []
        return self.start()

    def cli(self, *args: str, input: str | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m qp_tenant ARGS`` against the same data folder."""
        return forkserver.run([sys.executable, "-m", "qp_tenant", *args], input=input,
                              check=check, env={**self.env, "QP_DATA_DIR": str(self.data_dir)},
                              timeout=60)

    def create_tenant(self, slug: str, name: str) -> None:
        self.cli("create-tenant", "--slug", slug, "--name", name)

    def create_user(self, tenant: str, email: str, password: str, role: str = "admin") -> None:
        self.cli("create-user", "--tenant", tenant, "--email", email, "--role", role,
                 "--password-stdin", input=password + "\n")

    def log_text(self) -> str:
        """Everything the tenant logged: its stderr and the log files in the data folder."""
        parts = [self.output]
        for path in sorted(self.data_dir.rglob("*.log*")):
            parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)


class EmulatorProcess(ServerProcess):
    """The IT Glue emulator (``python -m qp_tenant.itglue.emulator``) on loopback."""

    def __init__(self, api_key: str, seed_demo: bool = True):
        args = [sys.executable, "-m", "qp_tenant.itglue.emulator", "--port", "0",
                "--api-key", api_key]
        if seed_demo:
            args.append("--seed-demo")
        super().__init__(args)
