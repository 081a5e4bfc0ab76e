"""The machine a run happened on, and how busy it was."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def _first(path: str, prefix: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def blas() -> str:
    """numpy's BLAS, as numpy describes it."""
    try:
        config: Any = np.show_config(mode="dicts")  # type: ignore[func-returns-value]
        info = config["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except (TypeError, KeyError, AttributeError):
        return "unknown"


def git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out + (" (src/ has uncommitted changes)" if dirty else "")


def details(repo: Path) -> dict[str, str]:
    """CPU, cores, memory, OS and the versions that matter for speed."""
    mem_kib = _first("/proc/meminfo", "MemTotal").split()[0]
    memory = f"{int(mem_kib) / 2**20:.1f} GiB" if mem_kib.isdigit() else "unknown"
    wrk = shutil.which("wrk")
    flags = set(_first("/proc/cpuinfo", "flags").split())
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_vpopcntdq")
    family, model = _first("/proc/cpuinfo", "cpu family"), _first("/proc/cpuinfo", "model\t")
    return {
        "CPU": f"{_first('/proc/cpuinfo', 'model name')} (family {family}, model {model}; "
        + ", ".join(f for f in wanted if f in flags)
        + ")",
        "cores": str(os.cpu_count()),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": sys.version.split()[0],
        "numpy": np.__version__,
        "BLAS": blas(),
        "onnxruntime": _version("onnxruntime"),
        "aiohttp": _version("aiohttp"),
        "SQLite": sqlite3.sqlite_version,
        "memoryd commit": git_commit(repo),
        "wrk": wrk or "not installed",
    }


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
