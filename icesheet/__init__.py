"""Ice-flow model on Firedrake (metres, years, MPa)."""
