"""Checkpointing schedules for adjoint computations (pure Python; never imports Firedrake).

Planning (:mod:`~checkpointing.planners`: Revolve, Disk-Revolve, H-Revolve, heuristics, per-step costs, online)
produces lists of actions (:mod:`~checkpointing.actions`) for a storage platform (:mod:`~checkpointing.platform`);
the simulator (:mod:`~checkpointing.simulator`) validates a schedule and measures its makespan.  Join graphs (several
chains joined by one functional, docs/join_graphs.md): :mod:`~checkpointing.joingraph` (model and simulator) and
:mod:`~checkpointing.join_planners` (with :mod:`~checkpointing.join_optimal`).
"""
from .actions import HANDLE, Action, Advance, Backward, Discard, Join, Read, Schedule, Start, Write
from .hrevolve import HRevolveTables, hrevolve_tables
from .join_planners import JOIN_PLANNERS, join_plan, plan_join
from .joingraph import Branch, JoinGraph, JoinReport, simulate_join
from .nonuniform import nonuniform_makespan
from .online import OnlineCheckpointing
from .planners import PLANNERS, ScheduleDoesNotFit, optimal_makespan, plan
from .platform import INF, Level, Platform, PlatformError
from .revolve import beta, revolve_forward_steps
from .simulator import InvalidScheduleError, Report, simulate

__all__ = ["Action", "Advance", "Backward", "Discard", "Read", "Schedule", "Write", "Start", "Join", "HANDLE",
           "HRevolveTables", "hrevolve_tables", "nonuniform_makespan", "OnlineCheckpointing", "PLANNERS",
           "ScheduleDoesNotFit", "optimal_makespan", "plan", "INF", "Level", "Platform", "PlatformError", "beta", "revolve_forward_steps",
           "InvalidScheduleError", "Report", "simulate", "JOIN_PLANNERS", "join_plan", "plan_join", "Branch",
           "JoinGraph", "JoinReport", "simulate_join"]
