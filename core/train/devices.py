"""The devices torch can see on this machine, with names and memory."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

from core.errors import SettingsError

GIB = 1024**3


@dataclass(frozen=True)
class DeviceInfo:
    id: str  # "cpu", "cuda:0", "mps"
    name: str  # "NVIDIA H200", "AMD EPYC 7B13 (2 cores)"
    memory_bytes: int | None  # device memory; system memory for cpu and mps

    @property
    def label(self) -> str:
        """`cuda:0 (NVIDIA H200, 139 GiB)`: how the device is named in menus and messages."""
        memory = f", {self.memory_bytes / GIB:.0f} GiB" if self.memory_bytes else ""
        return f"{self.id} ({self.name}{memory})"


def _cpu_name() -> str:
    name = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "CPU"
    return f"{name} ({os.cpu_count() or 1} cores)"


def _system_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def list_devices() -> list[DeviceInfo]:
    """cpu first, then every CUDA device, then mps where present."""
    devices = [DeviceInfo("cpu", _cpu_name(), _system_memory())]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append(DeviceInfo(f"cuda:{index}", props.name, props.total_memory))
    if torch.backends.mps.is_available():
        devices.append(DeviceInfo("mps", "Apple GPU", _system_memory()))
    return devices


def _available() -> str:
    return ", ".join("cpu" if d.id == "cpu" else d.label for d in list_devices())


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an absent device is a SettingsError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if torch.backends.mps.is_available():
            return torch.device("mps")
        raise SettingsError(f"mps is not available; this machine has: {_available()}")
    if name == "cuda" or name.startswith("cuda:"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = 0 if name == "cuda" else int(name.split(":", 1)[1]) if name[5:].isdigit() else -1
        if 0 <= index < count:
            return torch.device("cuda", index)
        raise SettingsError(f"{name} is not available; this machine has: {_available()}")
    raise SettingsError(f"device {name!r} is not known; use auto, cpu, cuda, cuda:N or mps")


def device_label(device: torch.device) -> str:
    """The menu label of a resolved device, e.g. `cuda:0 (NVIDIA H200, 139 GiB)`."""
    key = f"cuda:{device.index or 0}" if device.type == "cuda" else device.type
    for info in list_devices():
        if info.id == key:
            return info.label
    return str(device)
