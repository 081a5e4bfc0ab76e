"""Run ``memoryd serve`` as a subprocess and read its URL and first key from its output."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from attrs import define, field

URL_LINE = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
KEY_LINE = re.compile(r"^API key: (md_\S+)$", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@define
class Server:
    process: subprocess.Popen[str]
    url: str
    output: list[str] = field(factory=list)

    @property
    def first_key(self) -> str | None:
        found = KEY_LINE.search("\n".join(self.output))
        return found.group(1) if found else None

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def memoryd_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus MEMORYD_*, pointed at ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORYD_")}
    env.update(MEMORYD_DATA_DIR=str(data_dir), MEMORYD_LLM="extractive", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@contextmanager
def running(
    command: Sequence[str] | str,
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    timeout: float = 120,
) -> Iterator[Server]:
    """Start ``command`` (a list, or a shell line), wait for its URL line, stop it at the end."""
    process = subprocess.Popen(
        command,
        shell=isinstance(command, str),
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    url = None
    try:
        while url is None:
            if time.monotonic() > deadline:
                raise TimeoutError("memoryd did not start:\n" + "".join(lines[-40:]))
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"memoryd exited {process.returncode}:\n" + "".join(lines[-40:]))
            lines.append(line)
            match = URL_LINE.search(line)
            if match:
                url = match.group(1)
        # memoryd prints the URL line last, so everything it says at start is read.
        yield Server(process=process, url=url, output=[ln.rstrip("\n") for ln in lines])
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        process.stdout.close()


def memoryd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "memoryd", *args]
