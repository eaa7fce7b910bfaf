"""Start ``python -m MODULE`` server processes by forking a process that imported them already.

Most tests start their own tenant (and emulators). Importing FastAPI, SQLAlchemy, Alembic,
Pydantic and the app costs seconds of CPU per start, which on a two-core CI machine was most
of the suite's time. A helper process (the "zygote", this module run as a script) imports
those modules once per test session and forks for every start. Each start is still its own
OS process: its own stdin/stdout/stderr pipes, environment, working folder, pid, signals and
exit status, running the very ``python -m MODULE ARGS`` entry point from the top (the module
itself is executed afresh as ``__main__``, and the child leaves through normal interpreter
shutdown, so ``atexit`` handlers and log flushing happen as in a fresh interpreter). What
it does not repeat is reading the same ``.py`` files again.

What a fork cannot reproduce, a start falls back to a plain ``subprocess.Popen`` for: an
interpreter that is not ``sys.executable``, a module not preloaded, or ``PYTHON*``
variables (read only at interpreter start-up) that differ from the zygote's.
``QP_TEST_FORKSERVER=0`` turns the zygote off for a whole run (every start a fresh
interpreter), which is how to rule it out when a start-up problem is suspected; the
packaging tests, the desktop's own embedded tenant and the agent processes always start
fresh interpreters.

Protocol (a ``SOCK_SEQPACKET`` socket pair; one JSON message per packet): the zygote says
``{"ready": true}``; a request ``{"id", "module", "argv", "env", "cwd"}`` carries the
child's stdin, stdout and stderr as three file descriptors; the zygote answers
``{"id", "pid"}`` and, when a child ends, ``{"exit": pid, "code": N}`` (``-SIGNAL`` when
killed by a signal, as ``subprocess`` reports it).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

# Imported once by the zygote: everything heavy the tenant and the emulators import.
PRELOAD = ("qp_tenant.cli", "qp_tenant.app", "qp_tenant.server", "qp_tenant.db",
           "qp_tenant.itglue.emulator", "qp_tenant.m365.emulator")
# ``python -m`` targets a fork may run (a module under one of these packages).
FORKABLE = ("qp_tenant",)
_MAX_PACKET = 1 << 20


def _startup_env(env: dict[str, str]) -> dict[str, str]:
    """The variables the interpreter reads only when it starts."""
    return {k: v for k, v in env.items() if k.startswith("PYTHON")}


# ---------------------------------------------------------------------------- the zygote
def _zygote(sock: socket.socket) -> dict[str, Any] | None:
    """Serve fork requests; returns the request in a child, None when the session ends."""
    for name in sys.argv[2:]:
        importlib.import_module(name)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    children: set[int] = set()
    sock.send(json.dumps({"ready": True}).encode())
    while True:
        try:
            readable, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            readable = []
        if wake_r in readable:
            os.read(wake_r, 4096)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            sock.send(json.dumps({"exit": pid, "code": code}).encode())
        if sock not in readable:
            continue
        data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_PACKET, 3)
        if not data:  # the test session ended: nothing of ours outlives it
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return None
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(wake_r)
            os.close(wake_w)
            sock.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            return dict(request)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        sock.send(json.dumps({"id": request["id"], "pid": pid}).encode())


def _become(request: dict[str, Any]) -> None:
    """Turn this forked child into ``python -m MODULE ARGV`` (returns only by SystemExit)."""
    import runpy

    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]
    # Fresh standard streams on the new descriptors 0-2 (the zygote's were its own).
    sys.stdin = open(0, encoding=None, closefd=False)  # noqa: SIM115 - lives as long as we do
    sys.stdout = io.TextIOWrapper(open(1, "wb", buffering=0, closefd=False),  # noqa: SIM115
                                  write_through=True, line_buffering=True)
    sys.stderr = io.TextIOWrapper(open(2, "wb", buffering=0, closefd=False),  # noqa: SIM115
                                  write_through=True, line_buffering=True,
                                  errors="backslashreplace")
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    module = request["module"]
    # Run the entry module afresh as __main__, as ``-m`` does (not the zygote's copy).
    for name in (module, f"{module}.__main__"):
        sys.modules.pop(name, None)
    sys.argv = [request["argv0"], *request["argv"]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


# ---------------------------------------------------------------------------- the client
class ForkedProcess:
    """The parts of :class:`subprocess.Popen` the test helpers use, for a forked child."""

    def __init__(self, server: ForkServer, pid: int, args: list[str],
                 stdin: IO[str] | None, stdout: IO[str] | None, stderr: IO[str] | None):
        self._server = server
        self.pid = pid
        self.args = args
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None
        try:  # a pidfd: signals can never reach a recycled pid
            self._pidfd: int | None = os.pidfd_open(pid)
        except (ProcessLookupError, AttributeError):
            self._pidfd = None

    def _finish(self, code: int) -> None:
        self.returncode = code
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def poll(self) -> int | None:
        if self.returncode is None:
            code = self._server.exit_code(self.pid)
            if code is not None:
                self._finish(code)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            code = self._server.wait_exit(self.pid, timeout)
            if code is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._finish(code)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, input: str | None = None, timeout: float | None = None
                    ) -> tuple[str, str]:
        """Write ``input``, read both streams to the end, wait (as ``Popen.communicate``)."""
        out: list[str] = []
        err: list[str] = []
        readers = [threading.Thread(target=lambda s=s, sink=sink: sink.append(s.read()),
                                    daemon=True)
                   for s, sink in ((self.stdout, out), (self.stderr, err)) if s is not None]
        for t in readers:
            t.start()
        if self.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                if input:
                    self.stdin.write(input)
                self.stdin.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in readers:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return "".join(out), "".join(err)


class ForkServer:
    """One zygote for this test process, started on first use."""

    def __init__(self, preload: Sequence[str] = PRELOAD) -> None:
        self._preload = list(preload)
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._env: dict[str, str] = {}
        self._cwd = ""
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, int] = {}
        self._exits: dict[int, int] = {}
        self._ids = 0
        self._dead = False

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._cwd = os.getcwd()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.forkserver", str(theirs.fileno()),
             *self._preload],
            pass_fds=(theirs.fileno(),), env=self._env, stdin=subprocess.DEVNULL)
        theirs.close()
        atexit.register(self._close)
        ready = ours.recv(_MAX_PACKET)
        if not ready:
            raise RuntimeError("the test fork server exited while importing "
                               f"{self._preload} (see its output above)")
        self._sock = ours
        threading.Thread(target=self._read, daemon=True, name="forkserver").start()

    def _close(self) -> None:
        """End the zygote (it kills what is left of its children) and reap it."""
        if self._sock is not None:
            self._sock.close()
        if self._proc is not None:
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def _read(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(_MAX_PACKET)
            except OSError:  # closed by _close at exit
                data = b""
            with self._cond:
                if not data:
                    self._dead = True
                    self._cond.notify_all()
                    return
                message = json.loads(data)
                if "exit" in message:
                    self._exits[int(message["exit"])] = int(message["code"])
                else:
                    self._replies[int(message["id"])] = int(message["pid"])
                self._cond.notify_all()

    def can_fork(self, args: Sequence[str], env: dict[str, str]) -> bool:
        if os.environ.get("QP_TEST_FORKSERVER", "1") == "0" or self._dead:
            return False
        if len(args) < 3 or args[0] != sys.executable or args[1] != "-m":
            return False
        if args[2].split(".")[0] not in FORKABLE:
            return False
        wanted = _startup_env({**os.environ, "PYTHONUNBUFFERED": "1", **env})
        return not self._env or wanted == _startup_env(self._env)

    def popen(self, args: Sequence[str], env: dict[str, str], cwd: str | None = None,
              stdin_pipe: bool = False) -> ForkedProcess:
        """Start ``args`` (``[sys.executable, "-m", MODULE, ...]``) with piped stdout/stderr."""
        with self._lock:
            if self._sock is None:
                self._start()
            assert self._sock is not None
            if _startup_env(env) != _startup_env(self._env):
                raise ValueError("PYTHON* variables differ from the fork server's")
            in_r, in_w = os.pipe() if stdin_pipe else (os.open(os.devnull, os.O_RDONLY), -1)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self._ids += 1
            request_id = self._ids
            message = {"id": request_id, "module": args[2], "argv": list(args[3:]),
                       "argv0": args[0], "env": env, "cwd": cwd or os.getcwd()}
            try:
                socket.send_fds(self._sock, [json.dumps(message).encode()],
                                [in_r, out_w, err_w])
            finally:
                for fd in (in_r, out_w, err_w):
                    os.close(fd)
        with self._cond:
            if not self._cond.wait_for(lambda: request_id in self._replies or self._dead, 30):
                raise RuntimeError("the test fork server did not answer in 30 s")
            if self._dead:
                raise RuntimeError("the test fork server has exited")
            pid = self._replies.pop(request_id)
        stdin = open(in_w, "w", encoding="utf-8") if stdin_pipe else None  # noqa: SIM115
        return ForkedProcess(self, pid, list(args), stdin,
                             open(out_r, encoding="utf-8", errors="replace"),  # noqa: SIM115
                             open(err_r, encoding="utf-8", errors="replace"))  # noqa: SIM115

    def exit_code(self, pid: int) -> int | None:
        with self._cond:
            return self._exits.get(pid)

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: pid in self._exits or self._dead, timeout)
            if pid not in self._exits and self._dead:
                raise RuntimeError("the test fork server exited before its child did")
            return self._exits.get(pid)


_server = ForkServer()


def popen(args: Sequence[str], env: dict[str, str], cwd: str | None = None,
          stdin_pipe: bool = False) -> ForkedProcess | subprocess.Popen[str]:
    """A running ``args`` with text pipes for stdout and stderr (and stdin if asked).

    Forked from the zygote when it can be, else a plain ``subprocess.Popen``.
    """
    if _server.can_fork(args, env):
        return _server.popen(args, env, cwd, stdin_pipe)
    return subprocess.Popen(list(args), stdin=subprocess.PIPE if stdin_pipe else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd)


def run(args: Sequence[str], env: dict[str, str], input: str | None = None,
        timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Like ``subprocess.run(args, capture_output=True, text=True)``, forked when it can be."""
    if not _server.can_fork(args, env):
        return subprocess.run(list(args), input=input, text=True, capture_output=True,
                              check=check, env=env, timeout=timeout)
    proc = _server.popen(args, env, stdin_pipe=True)
    try:
        out, err = proc.communicate(input, timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    done = subprocess.CompletedProcess(list(args), proc.wait(), out, err)
    if check:
        done.check_returncode()
    return done


if __name__ == "__main__":
    _job = _zygote(socket.socket(fileno=int(sys.argv[1])))
    if _job is not None:
        _become(_job)
