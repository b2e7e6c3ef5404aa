"""Execute checkpointing schedules on pyadjoint for a Firedrake time loop (imports Firedrake).

:mod:`.protocol` says what a model must offer (:class:`TimeLoop`), :mod:`.tiers` stores checkpoints (RAM, disk),
:mod:`.manager` runs a schedule of :mod:`checkpointing.actions` and returns J, its gradients and what it cost
(its docstring starts with the API); :mod:`.ice` adapts ``icesheet.IceModel``; :mod:`.toymodel` is a small
nonlinear-diffusion model for tests and benchmarks.
``checkpointing/__init__.py`` does not import this subpackage, so the pure-Python package stays Firedrake-free.
"""
from .ice import ice_time_loop
from .manager import AdjointResult, CheckpointManager, Counters, StepFailedError, tiers_for_platform
from .protocol import SteppedModel, TimeLoop
from .tiers import (CapacityError, ChecksumError, DiskTier, RamTier, StorageError, StorageUnavailableError, Tier)

__all__ = ["CheckpointManager", "AdjointResult", "Counters", "StepFailedError", "tiers_for_platform", "TimeLoop",
           "SteppedModel", "ice_time_loop", "Tier", "RamTier", "DiskTier", "StorageError", "ChecksumError",
           "CapacityError", "StorageUnavailableError"]
