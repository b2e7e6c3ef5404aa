"""Experiments: scripts that regenerate the figures and tables."""
