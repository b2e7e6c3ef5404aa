"""Execute checkpointing schedules on pyadjoint for a Firedrake time loop (imports Firedrake).

:mod:`.protocol` says what a model must offer (:class:`TimeLoop`), :mod:`.tiers` stores checkpoints (RAM, disk),
:mod:`.manager` runs a schedule of :mod:`checkpointing.actions` and returns J, its gradients and what it cost;
:mod:`.driver` holds :func:`gradient`, the one entry point (plan, tiers, manager, run), and :func:`evaluate`;
:mod:`.calibration` measures a platform's costs on a model.  The package knows models only through the protocol.
``checkpointing/__init__.py`` does not import this subpackage, so the pure-Python package stays Firedrake-free.
"""
from .driver import evaluate, gradient, online_gradient, tiers_for_platform
from .manager import AdjointResult, CheckpointManager, Counters, StepFailedError
from .protocol import AdaptiveTimeLoop, SteppedModel, TimeLoop
from .tiers import (CapacityError, ChecksumError, DiskTier, RamTier, StorageError, StorageUnavailableError, Tier)

__all__ = ["gradient", "online_gradient", "evaluate", "CheckpointManager", "AdjointResult", "Counters",
           "StepFailedError", "tiers_for_platform", "TimeLoop", "AdaptiveTimeLoop", "SteppedModel", "Tier", "RamTier",
           "DiskTier", "StorageError", "ChecksumError", "CapacityError", "StorageUnavailableError"]
