"""Start ``python -m devhost`` as a subprocess and wait until it answers (tests, the stack, the bench)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(
    base_url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``/admin/host/status`` (as Core Tools serves it) until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"devhost exited with status {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{base_url}/admin/host/status", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"devhost at {base_url} not ready after {timeout}s")


class DevHostProcess:
    """``python -m devhost`` in a subprocess. ``settings`` go into its environment (they win over
    local.settings.json); ``host_overrides`` are merged into the host.json it reads."""

    def __init__(
        self,
        app_module: str = "function_app",
        settings: Mapping[str, str] | None = None,
        port: int = 0,
        *,
        host_overrides: Mapping[str, Any] | None = None,
        host_json: Path | None = None,
        settings_file: Path | None = None,
        log_path: Path | None = None,
        cwd: Path = REPO_ROOT,
        detach: bool = False,
    ) -> None:
        self.app_module = app_module
        self.settings = dict(settings or {})
        self.port = port or free_port()
        self.host_overrides = dict(host_overrides or {})
        self.host_json = host_json or cwd / "host.json"
        self.settings_file = settings_file
        self.log_path = log_path
        self.cwd = cwd
        self.detach = detach
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        host_json = self.host_json
        if self.host_overrides:
            from devhost.config import deep_merge

            self._tmp = tempfile.TemporaryDirectory(prefix="devhost-")
            base = json.loads(host_json.read_text()) if host_json.is_file() else {}
            host_json = Path(self._tmp.name) / "host.json"
            host_json.write_text(json.dumps(deep_merge(base, self.host_overrides)))
        return [
            sys.executable, "-m", "devhost",
            "--port", str(self.port),
            "--app", self.app_module,
            "--host-json", str(host_json),
            "--settings", str(self.settings_file) if self.settings_file else "none",
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> str:
        env = {**os.environ, **self.settings, "PYTHONUNBUFFERED": "1"}
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or None,
            start_new_session=self.detach,
        )
        try:
            wait_until_ready(self.base_url, timeout, self.process)
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful: in-flight work finishes), SIGKILL after ``timeout``. Returns the exit status."""
        code: int | None = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            code = self.process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return code

    def __enter__(self) -> DevHostProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
