"""A real memoryd, started as a subprocess on 127.0.0.1, and what it costs.

``start_server`` runs ``python -m memoryd serve --port 0 --data-dir DIR`` with
the bench's settings in ``MEMORYD_*`` variables, waits for its "listening on"
line and its first API key, and stops it (SIGTERM, then SIGKILL) at the end.
Its output goes to a log file in the data dir, never to a pipe that could
fill up. The process's resident memory and CPU time are read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from attrs import define

URL_LINE = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
KEY_LINE = re.compile(r"^API key: (md_\S+)$", re.M)

#: Settings every bench server gets: offline, extractive chat, quiet logs.
BASE_ENV: Mapping[str, str] = {
    "MEMORYD_LLM": "extractive",
    "MEMORYD_LOG_LEVEL": "warning",
    "MEMORYD_HOST": "127.0.0.1",
}


@define
class Server:
    process: subprocess.Popen[bytes]
    url: str
    key: str | None
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        """Resident memory now (VmRSS), MiB."""
        return _status_kib(self.pid, "VmRSS") / 1024

    def peak_rss_mib(self) -> float:
        """Peak resident memory so far (VmHWM), MiB."""
        return _status_kib(self.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        return process_cpu_seconds(self.pid)


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@contextlib.contextmanager
def start_server(
    data_dir: Path, *, env: Mapping[str, str] | None = None, timeout: float = 900
) -> Iterator[Server]:
    """Run memoryd on ``data_dir`` until the block ends; ``timeout`` bounds the start.

    The start includes rebuilding the index from the file, which takes a
    while at a million memories.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORYD_")}
    full_env.update(BASE_ENV)
    full_env.update(env or {})
    full_env.update(PYTHONUNBUFFERED="1", MEMORYD_DATA_DIR=str(data_dir))
    command = [sys.executable, "-m", "memoryd", "serve", "--port", "0", "--data-dir", str(data_dir)]
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        url, key = _wait_for_url(process, log, start, timeout)
        yield Server(process=process, url=url, key=key, log=log)
    finally:
        stop(process)


def _wait_for_url(
    process: subprocess.Popen[bytes], log: Path, start: int, timeout: float
) -> tuple[str, str | None]:
    deadline = time.monotonic() + timeout
    while True:
        with log.open("rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
        found = URL_LINE.findall(text)
        if found:
            keys = KEY_LINE.findall(text)
            return found[-1], (keys[-1] if keys else None)
        if process.poll() is not None:
            raise RuntimeError(f"memoryd exited with {process.returncode}:\n{text[-4000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"memoryd did not start in {timeout:.0f} s:\n{text[-4000:]}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (it closes the store cleanly), SIGKILL after 60 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
