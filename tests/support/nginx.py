"""A real nginx (Debian's) in front of several tenant processes, on a loopback port.

The site mirrors docs/deployment.md: plain round-robin upstream, the event stream with
``proxy_buffering off`` and a long read timeout, and a failed upstream retried on the next one
only when the request never reached it (nginx never resends a POST that was sent).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.postgres import free_port

NGINX_CANDIDATES = ["/usr/sbin/nginx", "/usr/bin/nginx"]

SITE = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;

    upstream qp_tenant {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 1m;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 3;

        location = /api/v1/events/stream {{
            proxy_pass http://qp_tenant;
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 1h;
        }}
        location / {{
            proxy_pass http://qp_tenant;
        }}
    }}
}}
"""


def find_nginx() -> str:
    for path in NGINX_CANDIDATES:
        if Path(path).exists():
            return path
    found = shutil.which("nginx")
    if found:
        return found
    raise RuntimeError("nginx is missing: install Debian's `nginx-light` "
                       "(scripts/system-deps.sh test does).")


class Nginx:
    """``nginx -p ROOT -c nginx.conf`` in the foreground, proxying to ``upstreams`` (host:port)."""

    def __init__(self, upstreams: list[str]):
        self.binary = find_nginx()
        self.root = Path(tempfile.mkdtemp(prefix="qp-nginx-"))
        self.port = 0
        self.upstreams = upstreams
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.port = free_port()
        servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=2s;"
                            for u in self.upstreams)
        conf = self.root / "nginx.conf"
        conf.write_text(SITE.format(root=self.root, servers=servers, port=self.port))
        check = subprocess.run([self.binary, "-t", "-p", str(self.root), "-c", str(conf)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected its configuration:\n{check.stderr}")
        self.proc = subprocess.Popen([self.binary, "-p", str(self.root), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self.url
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start:\n" + self.error_log()) from None
                time.sleep(0.05)  # polling for the port with a deadline

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
