"""``python -m icesheet`` runs the command line (icesheet.cli)."""
import sys

from icesheet.cli import main

sys.exit(main())
