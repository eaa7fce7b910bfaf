"""The embedded local tenant: ``python -m qp_tenant serve`` as a child process on loopback
(in a PyInstaller bundle: the bundle's executable with the same arguments).

A subprocess (not a thread) isolates crashes and avoids uvicorn's shutdown hang with open
SSE streams. The child is started through ``QProcess`` so that nothing blocks the GUI thread;
its ``listening on URL`` line tells us the port, then ``/healthz`` tells us it is ready. A pid
file lets the next start clean up a child left behind by a crash.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import signal
import socket
from collections.abc import Mapping
from pathlib import Path

from platformdirs import user_data_dir
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from qp_common.wire import parse_listening_line
from qp_desktop import APP_NAME
from qp_desktop.services.bundle import module_command
from qp_desktop.services.tenant_client import TenantClient, TenantError

log = logging.getLogger(__name__)

PID_FILE = "desktop-child.pid"
STARTUP_TIMEOUT = 60.0


def default_data_dir() -> Path:
    """Where the embedded tenant keeps its SQLite database and keys."""
    return Path(user_data_dir(APP_NAME, appauthor=False)) / "tenant"


class ChildServerError(Exception):
    """The child did not start. ``message`` is for the technician, ``details`` its stderr."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message = message
        self.details = details


class PortTakenError(ChildServerError):
    """The tenant's own port is in use by another program: starting elsewhere would change
    the workflow URL and the address agents enrolled with, so it is the technician's call."""

    def __init__(self, port: int):
        super().__init__(
            f"Port {port} on this computer, where the tenant always runs, is in use by "
            "another program. IT Glue's workflow URL and your agents use this port. Close "
            "that program and choose Try again, or choose Use a new port: the tenant then "
            "moves, and you paste the new workflow URL into IT Glue and enroll the agents "
            "again.")
        self.port = port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on ``host:port`` now (as uvicorn binds: reuse on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_of(url: str) -> int:
    """The port of ``http://127.0.0.1:PORT`` (0 when there is none)."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).port or 0
    except ValueError:
        return 0


class ChildServer(QObject):
    """A child process that prints ``listening on URL`` on stdout once it serves.

    Signals:
        exited(int): the child ended (exit code), whether asked to or not.
    """

    exited = Signal(int)

    def __init__(self, name: str, args: list[str], env: Mapping[str, str] | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.args = args
        self.env = dict(env or {})
        self.url = ""
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._stdout_buf = b""
        self._stderr_buf = b""
        self._proc: QProcess | None = None
        self._listening: asyncio.Future[str] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning

    @property
    def pid(self) -> int:
        return int(self._proc.processId()) if self._proc is not None else 0

    def details(self) -> str:
        return "".join(self.stderr_tail).strip()

    async def start(self, within: float = STARTUP_TIMEOUT) -> str:
        """Start the child and return its URL.

        Raises:
            ChildServerError: it could not be started, exited, or never said it listens.
        """
        loop = asyncio.get_running_loop()
        self._listening = loop.create_future()
        self._stopping = False
        proc = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        for key, value in self.env.items():
            environment.insert(key, value)
        proc.setProcessEnvironment(environment)
        proc.setProgram(self.args[0])
        proc.setArguments(self.args[1:])
        proc.readyReadStandardOutput.connect(self._on_stdout)
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.errorOccurred.connect(self._on_error)
        proc.finished.connect(self._on_finished)
        self._proc = proc
        proc.start()
        try:
            self.url = await asyncio.wait_for(asyncio.shield(self._listening), within)
        except TimeoutError:
            self.stop()
            raise ChildServerError(f"The {self.name} did not start within {within:.0f} "
                                   "seconds.", self.details()) from None
        return self.url

    def _fail(self, message: str) -> None:
        if self._listening is not None and not self._listening.done():
            self._listening.set_exception(ChildServerError(message, self.details()))

    def _on_stdout(self) -> None:
        assert self._proc is not None
        self._stdout_buf += bytes(self._proc.readAllStandardOutput().data())
        *lines, self._stdout_buf = self._stdout_buf.split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace").strip()
            url = parse_listening_line(line)
            if url and self._listening and not self._listening.done():
                self._listening.set_result(url)

    def _on_stderr(self) -> None:
        assert self._proc is not None
        self._stderr_buf += bytes(self._proc.readAllStandardError().data())
        *lines, self._stderr_buf = self._stderr_buf.split(b"\n")
        for raw in lines:
            self.stderr_tail.append(raw.decode(errors="replace") + "\n")

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._fail(f"The {self.name} could not be started ({self.args[0]} is missing or "
                       "not executable).")

    def _on_finished(self, code: int, _status: QProcess.ExitStatus) -> None:
        self._on_stderr()
        if self._stderr_buf:
            self.stderr_tail.append(self._stderr_buf.decode(errors="replace"))
            self._stderr_buf = b""
        self._fail(f"The {self.name} stopped while starting (exit code {code}).")
        if not self._stopping:
            log.warning("%s exited unexpectedly with code %s", self.name, code)
        self.exited.emit(code)

    def stop(self, timeout_ms: int = 5000) -> None:
        """SIGTERM, then kill if it has not stopped in ``timeout_ms``. Blocks briefly: it is
        called when the app quits, and the tenant stops in about a second."""
        proc = self._proc
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            return
        self._stopping = True
        proc.terminate()
        if not proc.waitForFinished(timeout_ms):
            log.warning("%s ignored SIGTERM; killing it", self.name)
            proc.kill()
            proc.waitForFinished(2000)


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_our_tenant(pid: int, data_dir: Path) -> bool:
    """True only if ``pid`` is a ``qp_tenant serve`` on this very data folder."""
    args = _cmdline(pid)
    if not args:
        return False
    return "qp_tenant" in args and "serve" in args and str(data_dir) in args


class LocalTenant(QObject):
    """Starts, watches and stops the embedded tenant.

    Signals:
        progress(str): a sentence about what is happening while starting.
        ready(str): the tenant is healthy at this URL.
        failed(str, str): it could not start: a sentence, and the last lines it logged.
        stopped_unexpectedly(): the running tenant died.
    """

    progress = Signal(str)
    ready = Signal(str)
    failed = Signal(str, str)
    stopped_unexpectedly = Signal()

    def __init__(self, client: TenantClient, data_dir: Path | None = None,
                 extra_env: Mapping[str, str] | None = None, parent: QObject | None = None,
                 *, port: int = 0, public_url: str = ""):
        super().__init__(parent)
        self.client = client
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.extra_env = dict(extra_env or {})
        # The port it keeps across launches (0: pick a free one, then keep that): the
        # workflow URL in IT Glue and the agents' tenant address both contain it.
        self.port = port
        # The address IT Glue and agents reach it at through a tunnel or reverse proxy
        # ("" = its loopback address).
        self.public_url = public_url
        # A fresh secret per start: only this app may create the first administrator.
        self.setup_token = secrets.token_urlsafe(32)
        self.url = ""
        self.child: ChildServer | None = None
        self._starting: asyncio.Task[str] | None = None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / PID_FILE

    @property
    def running(self) -> bool:
        return bool(self.url) and self.child is not None and self.child.running

    async def ensure_started(self) -> str:
        """Start once; concurrent callers share the same start."""
        if self.running:
            return self.url
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._start())
        return await asyncio.shield(self._starting)

    async def _start(self) -> str:
        self.progress.emit("Starting the tenant on this computer\u2026")
        try:
            # Only this user may read the tenant's files (its database and key file).
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.data_dir.chmod(0o700)
            await self.clean_up_stale_child()
        except OSError as exc:
            message = f"Cannot use the data folder {self.data_dir}: {exc.strerror}."
            self.failed.emit(message, "")
            raise ChildServerError(message) from exc
        if self.port and not port_is_free(self.port):
            error = PortTakenError(self.port)
            self.failed.emit(error.message, "")
            raise error
        env = {"QP_DATA_DIR": str(self.data_dir), "QP_SETUP_TOKEN": self.setup_token,
               **({"QP_PUBLIC_URL": self.public_url} if self.public_url else {}),
               **self.extra_env}
        # Inside a PyInstaller bundle this is the bundle's own executable with "-m qp_tenant"
        # (see services/bundle.py), so the child starts from the bundle too.
        args = module_command("qp_tenant", "serve", "--host", "127.0.0.1",
                              "--port", str(self.port), "--data-dir", str(self.data_dir))
        log.info("starting the local tenant: %s", " ".join(args[:3]))
        child = ChildServer("local tenant", args, env, parent=self)
        self.child = child
        try:
            url = await child.start()
            self._write_pid_file(child.pid)
            self.progress.emit("Waiting for the tenant to be ready\u2026")
            await self.client.at(url).wait_healthy(within=STARTUP_TIMEOUT)
        except ChildServerError as exc:
            message = ("The tenant on this computer could not be started. "
                       + exc.message)
            self.failed.emit(message, exc.details)
            raise ChildServerError(message, exc.details) from exc
        except TenantError as exc:
            child.stop()
            message = "The tenant on this computer started but is not healthy. " + exc.message
            self.failed.emit(message, child.details())
            raise ChildServerError(message, child.details()) from exc
        child.exited.connect(self._on_child_exited)
        self.url = url
        self.port = port_of(url) or self.port
        log.info("local tenant ready at %s (data in %s)", url, self.data_dir)
        self.ready.emit(url)
        return url

    def _on_child_exited(self, _code: int) -> None:
        if self.url:
            self.url = ""
            self._remove_pid_file()
            self.stopped_unexpectedly.emit()

    async def clean_up_stale_child(self) -> bool:
        """Stop a tenant left running by a crashed app on the same data folder.

        Returns True if one was found and stopped. A pid that is not our tenant (the pid was
        reused) is left alone.
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return False
        found = False
        if _is_our_tenant(pid, self.data_dir):
            found = True
            log.warning("stopping a tenant left over from an earlier run (pid %s)", pid)
            self.progress.emit("Stopping a tenant left over from an earlier run\u2026")
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    await asyncio.sleep(0.1)
                    if not _is_our_tenant(pid, self.data_dir):
                        break
                else:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._remove_pid_file()
        return found

    def _write_pid_file(self, pid: int) -> None:
        fd = os.open(self.pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(str(pid))

    def _remove_pid_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def stop(self) -> None:
        """Stop the child (at quit). Safe to call more than once."""
        self.url = ""
        if self.child is not None:
            self.child.stop()  # url is already empty: its exit is not "unexpected"
            self.child = None
        self._remove_pid_file()
