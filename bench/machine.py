"""What every bench script prints about the machine it ran on, so a figure
can be read with its context (bench/RESULTS.md quotes these lines)."""

import os
import platform
import subprocess
from pathlib import Path


def cpu_model() -> str:
    cpu = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return cpu
    for line in lscpu.splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    return cpu


def ram_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def machine_info(*, database: str = "") -> list[str]:
    import django

    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; RAM {ram_total()}",
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"Django {django.get_version()}" + (f"; {database}" if database else ""),
        f"Platform: {platform.platform()}",
        # Other processes compete for the CPU: say how busy the machine was.
        "Load average (1, 5, 15 min) at the end: "
        + ", ".join(f"{load:.2f}" for load in os.getloadavg()),
    ]
