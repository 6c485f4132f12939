"""Whether the kernel's OOM killer struck: a SIGKILL is called OOM only when the kernel says so.

Sources, first found wins: our cgroup's ``memory.events`` (v2) or ``memory.oom_control``
(v1), both with an ``oom_kill`` count, else the system-wide ``oom_kill`` of /proc/vmstat.
The children share the supervisor's cgroup (systemd puts the whole unit in one), so a count
that rose while a child lived, and a SIGKILL nobody here sent, together mean OOM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")


def _cgroup_files(proc_cgroup: str) -> list[Path]:
    out: list[Path] = []
    for line in proc_cgroup.splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        rel = path.lstrip("/")
        if hier == "0" and not controllers:  # cgroup v2 (unified)
            out += [CGROUP_ROOT / rel / "memory.events",
                    CGROUP_ROOT / "unified" / rel / "memory.events"]
        elif "memory" in controllers.split(","):
            out.append(CGROUP_ROOT / "memory" / rel / "memory.oom_control")
    return out


def _count(text: str) -> int | None:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


def oom_kill_count() -> int | None:
    """The OOM kill counter that applies to our processes, or None when none can be read."""
    try:
        files = _cgroup_files(Path("/proc/self/cgroup").read_text())
    except OSError:
        files = []
    for path in [*files, Path("/proc/vmstat")]:
        try:
            found = _count(path.read_text())
        except OSError:
            continue
        if found is not None:
            return found
    return None


def rose(before: int | None, after: int | None) -> bool:
    """The kernel OOM-killed something in between (unknown counts say no)."""
    return before is not None and after is not None and after > before
