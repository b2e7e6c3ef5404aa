"""The one entry point for a checkpointed gradient: plan a schedule, give every platform level a tier, run it.

::

    from checkpointing.adjoint import TimeLoop, gradient

    loop = TimeLoop(model, timesteps=[dt] * l, controls=(p,), functional=j)      # protocol.py
    result = gradient(loop, "hrevolve", platform, ["/scratch/ckpt"])             # AdjointResult (manager.py)

``schedule`` is a planner name of :data:`checkpointing.planners.PLANNERS` (planned here for ``l`` steps on
``platform``, with ``planner_options``) or a list of :mod:`checkpointing.actions` planned elsewhere.  ``storage``
is either the directories of the disk levels (one per level ``k >= 1``; level 0 is RAM: :func:`tiers_for_platform`)
or one ready :class:`~checkpointing.adjoint.tiers.Tier` per level (to reuse tiers, or to measure them).
``platform`` defaults to one RAM level with ``l`` slots (store-all fits).  :func:`online_gradient` does the same
for an :class:`~checkpointing.adjoint.protocol.AdaptiveTimeLoop`, whose ``l`` is known only once it has run.  ``result.predicted`` is the simulator's
report on ``platform``, so its makespan is in the platform's cost units.
"""
from __future__ import annotations

import os

from ..planners import plan
from ..platform import Platform, storage_platform
from .manager import AdjointResult, CheckpointManager
from .protocol import AdaptiveTimeLoop, TimeLoop
from .tiers import DiskTier, RamTier, Tier

__all__ = ["gradient", "online_gradient", "evaluate", "tiers_for_platform"]


def tiers_for_platform(platform: Platform, directories=()) -> list[Tier]:
    """One tier per level of ``platform``: level 0 in RAM, level ``k >= 1`` a :class:`DiskTier` in
    ``directories[k-1]``, each with the level's capacity and name."""
    directories = list(directories)
    if len(directories) != platform.n_levels - 1:
        raise ValueError(f"directories = {directories!r}: platform {platform.name or ''!r} has "
                         f"{platform.n_levels} levels, so {platform.n_levels - 1} directories are needed "
                         "(level 0 is RAM)")
    levels = platform.levels
    return [RamTier(levels[0].capacity, levels[0].name)] + [
        DiskTier(d, level.capacity, level.name) for d, level in zip(directories, levels[1:])]


def _tiers(platform: Platform, storage) -> list[Tier]:
    storage = list(storage)
    if storage and all(isinstance(s, Tier) for s in storage):
        return storage
    if any(not isinstance(s, (str, os.PathLike)) for s in storage):
        raise TypeError(f"storage = {storage!r}: expected directories (one per disk level) or one Tier per level")
    return tiers_for_platform(platform, storage)


def gradient(loop: TimeLoop, schedule="store-all", platform: Platform | None = None, storage=(),
             planner_options: dict | None = None) -> AdjointResult:
    """J, dJ/dp for every control of ``loop`` and dJ/dx_0, with bounded memory (see the module docstring)."""
    platform = platform or storage_platform(loop.steps)
    if isinstance(schedule, str):
        schedule = plan(schedule, loop.steps, platform, **(planner_options or {}))
    elif planner_options:
        raise ValueError(f"planner_options = {planner_options!r}: only for a planner name, not a list of actions")
    return CheckpointManager(loop, _tiers(platform, storage)).run(schedule, platform)


def online_gradient(loop: AdaptiveTimeLoop, platform: Platform, storage=(), level: int = 0) -> AdjointResult:
    """J, dJ/dp and dJ/dx_0 for a chain whose length is decided while it runs (adaptive time steps), with the
    online checkpointer on ``level`` of ``platform`` (CheckpointManager.run_online; ``storage`` as for
    :func:`gradient`).  ``loop.timesteps`` holds the time steps run."""
    return CheckpointManager(loop, _tiers(platform, storage)).run_online(platform, level)


def evaluate(loop: TimeLoop) -> float:
    """``J = sum_i j_i(x_i)`` by one untaped forward sweep from the model's current state (which is restored)."""
    return CheckpointManager(loop, [RamTier(0)]).evaluate()
