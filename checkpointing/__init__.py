"""Checkpointing schedules for adjoint computations (pure Python)."""
