"""A local Elasticsearch-API server for the tests: ``noida-db`` on a free 127.0.0.1 port.

noida-db (PyPI, a Rust binary reporting Elasticsearch 8.15.3) is looser than
Elasticsearch: no licence gating, no ``linear`` retriever. Tests that need
those are for a real cluster (``MEMORYD_TEST_ELASTICSEARCH_URL``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from attrs import define


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def noida_binary() -> str | None:
    """The ``noida-db`` command of this environment, if it is installed."""
    here = Path(sys.executable).parent / "noida-db"
    if here.exists():
        return str(here)
    return shutil.which("noida-db")


@define
class LocalCluster:
    """One noida-db process serving the Elasticsearch API; it can be stopped and started."""

    binary: str
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        if not self.port:
            self.port = _free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir.parent / "noida.log").open("ab") as log:
            self.process = self._popen(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"noida-db exited with {self.process.returncode}; see noida.log")
            try:
                with urllib.request.urlopen(self.url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"noida-db did not answer on {self.url} within {timeout} s")

    def _popen(self, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                self.binary, "start", "--only", "elasticsearch", "--host", "127.0.0.1",
                "--elasticsearch-port", str(self.port), "--data-dir", str(self.data_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server (its data stays in ``data_dir``)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # Its workers may outlive it a moment: stopped means the port refuses connections.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"noida-db still answers on {self.url} after it was stopped")
