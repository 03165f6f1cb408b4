"""Where and with what a result was measured: device, commit, date, versions."""
from __future__ import annotations

import datetime
import os
import platform
import socket
import subprocess

import torch

import lfm25_kernels as L


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "") if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def describe(device: str) -> dict:
    info = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), commit=commit(),
                host=socket.gethostname(), device=device, cpu=cpu_name(), threads=torch.get_num_threads(),
                python=platform.python_version(), torch=torch.__version__, lfm25_kernels=L.__version__,
                cpu_isa=L.default_isa())
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["sms"] = torch.cuda.get_device_properties(0).multi_processor_count
        info["cuda"] = torch.version.cuda
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def slug(name: str) -> str:
    """A file-name-safe form of a device name: lower case, each other character a dash."""
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
