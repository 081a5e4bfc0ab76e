"""A local Elasticsearch-API server for ``--storage elasticsearch``: noida-db on 127.0.0.1.

noida-db (PyPI, a Rust binary reporting Elasticsearch 8.15.3) is not
Elasticsearch: the figures measured over it show memoryd's adapter (request
building, the msearch round trip, exact rescoring, the outbox), not a
cluster's speed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_elasticsearch(work: Path, *, timeout: float = 60) -> Iterator[str]:
    """Start noida-db with its data in ``work``; its URL until the block ends."""
    here = Path(sys.executable).parent / "noida-db"
    binary = str(here) if here.exists() else shutil.which("noida-db")
    if binary is None:
        raise SystemExit("--storage elasticsearch needs noida-db: pip install noida-db==0.2.3")
    port = _free_port()
    work.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    command = [binary, "start", "--only", "elasticsearch", "--host", "127.0.0.1",
               "--elasticsearch-port", str(port), "--data-dir", str(work / "data")]  # fmt: skip
    with (work / "noida.log").open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"noida-db exited with {process.returncode}: {work}/noida.log")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"noida-db did not answer on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def elasticsearch_env(url: str, prefix: str = "bench") -> dict[str, str]:
    """The server settings for the Elasticsearch backend on ``url`` (one node: no replicas)."""
    return {
        "MEMORYD_STORAGE": "elasticsearch",
        "MEMORYD_ELASTICSEARCH_URL": url,
        "MEMORYD_ELASTICSEARCH_INDEX_PREFIX": prefix,
        "MEMORYD_ELASTICSEARCH_REPLICAS": "0",
        # noida-db scans its index per request (docs/elasticsearch.md): on a loaded 2-core
        # machine one search took seconds at a few thousand memories, past the default
        # 10 s (a 503), and a minute or more at 100k.
        "MEMORYD_ELASTICSEARCH_REQUEST_TIMEOUT": "600",
    }
