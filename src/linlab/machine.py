"""What this machine has, as a run's checks ask it: memory available, the file system a
path is on, a package installed, SLURM. Plain Python (``/proc``, the PATH), no torch."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

# file systems that hold no files of a user's (root may still pass os.access on them)
PSEUDO_FILE_SYSTEMS = frozenset(
    {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs"}
    | {"securityfs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "efivarfs"}
)


def file_system_type(path: Path) -> str | None:
    """The type of the file system ``path`` is on, from the longest mount point above it."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    resolved = str(path.resolve())
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, fields[2]
    return kind


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ModuleNotFoundError, ValueError):  # its package is missing; or blocked in sys.modules
        return False


def has_slurm() -> bool:
    return bool(shutil.which("sbatch") and shutil.which("srun"))
