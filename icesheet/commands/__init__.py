"""Subcommands of the ``icesheet`` command line, one module each (listed in icesheet.cli.COMMAND_MODULES)."""
