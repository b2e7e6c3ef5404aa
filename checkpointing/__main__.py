"""``python -m checkpointing``: the command line of :mod:`checkpointing.cli`."""
from .cli import main

raise SystemExit(main())
