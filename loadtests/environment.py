"""What a run ran on: machine, Python, package versions, git commit, database (results JSON)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
# Distributions whose versions the report prints (servers, frameworks, drivers, tools).
PACKAGES = (
    "fastapi", "starlette", "pydantic", "pydantic-core", "strawberry-graphql", "flask", "werkzeug",
    "flask-sock", "uvicorn", "uvicorn-worker", "uvloop", "httptools", "h11", "granian", "gunicorn",
    "gevent", "waitress", "sqlalchemy", "asyncpg", "psycopg", "orjson", "argon2-cffi", "pyjwt",
    "httpx", "websockets", "locust", "hdrhistogram", "numpy", "scipy", "psutil", "pgserver",
)


def _read(path: str) -> str:
    with contextlib.suppress(OSError):
        return Path(path).read_text(errors="replace")
    return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _detect_virt(flag: str) -> str | None:
    tool = shutil.which("systemd-detect-virt")
    if not tool:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([tool, flag], capture_output=True, text=True, timeout=5).stdout.strip()
        return None if out in ("", "none") else out
    return None


def virtualization() -> str | None:
    """The hypervisor and the container, as far as they can be told ("docker in vm (…)"): a
    container inside a VM is common, and the VM is what shares its cores with others."""
    vm = _detect_virt("--vm")
    if vm is None and " hypervisor" in _read("/proc/cpuinfo"):
        vendor = _read("/sys/class/dmi/id/sys_vendor").strip()
        product = _read("/sys/class/dmi/id/product_name").strip()
        name = (vendor + " " + product).strip()
        if "qemu" in name.lower() or "kvm" in name.lower():
            vm = "kvm"
        else:  # no DMI (Firecracker, for one): say what the kernel calls itself
            vm = f"vm ({name or 'hypervisor flag; kernel ' + platform.release()})"
    container = _detect_virt("--container")
    if vm and container:
        return f"{container} in {vm}"
    return vm or container or "none"


def memory_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def machine() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count() or 1,
        "memory_bytes": memory_bytes(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "virtualization": virtualization(),
        "open_files_limit": _nofile(),
    }


def _nofile() -> list[int] | None:
    with contextlib.suppress(ImportError, OSError):
        import resource

        return list(resource.getrlimit(resource.RLIMIT_NOFILE))
    return None


def packages() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def tool_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    wrk = shutil.which("wrk")
    if wrk:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            # `wrk -v` prints its version line and exits with status 1
            text = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=5)
            out["wrk"] = (text.stdout or text.stderr).strip().splitlines()[0]
    else:
        out["wrk"] = None
    return out


def git() -> dict[str, Any]:
    """Commit and dirty state (read-only git commands)."""

    def run(*args: str) -> str | None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
            if done.returncode == 0:
                return done.stdout.strip()
        return None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None,
            "branch": run("rev-parse", "--abbrev-ref", "HEAD")}


def redact(dsn: str) -> str:
    url = make_url(dsn)
    return url.render_as_string(hide_password=True)


def database(dsn: str) -> dict[str, Any]:
    backend = make_url(dsn).get_backend_name()
    info: dict[str, Any] = {"kind": backend, "dsn_redacted": redact(dsn), "version": None}
    with contextlib.suppress(Exception):
        if backend == "postgresql":
            from provision.postgres import version

            info["version"] = version(dsn)
        else:
            import sqlite3

            info["version"] = sqlite3.sqlite_version
    return info


def capture(dsn: str | None) -> dict[str, Any]:
    return {
        "machine": machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": packages(),
        "tools": tool_versions(),
        "git": git(),
        "database": database(dsn) if dsn else None,
    }
