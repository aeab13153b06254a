"""Accelerator kinds by name: an explicit table, no registration by import side effects."""

from __future__ import annotations

from .ascend import Ascend
from .base import Accelerator, ConfigMapData, PodParts
from .cpu import Cpu
from .gaudi import Gaudi
from .nvidia import Nvidia

REGISTRY: dict[str, Accelerator] = {
    "cpu": Cpu(),
    "nvidia": Nvidia(),
    "ascend": Ascend(),
    "gaudi": Gaudi(),
}

__all__ = ["REGISTRY", "Accelerator", "ConfigMapData", "PodParts"]
