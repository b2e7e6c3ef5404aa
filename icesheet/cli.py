"""``icesheet`` command line: one argparse subcommand per module in ``COMMAND_MODULES``.

A command module defines ``register(subparsers)``, which adds its subparser and sets ``handler`` (a function of the
parsed arguments returning an exit code).  To add a command, write its module and add it to the list.

Every failure goes through checkpointing/exits.py: one line ``icesheet COMMAND: error: ...`` naming the thing, its
value and what is allowed or what to do, and a documented exit status (2 bad input, 4 storage, 5 failed step,
6 physics guard, 130 SIGINT, 143 SIGTERM, 1 internal error); ``--debug`` adds the traceback.  SIGTERM unwinds like
SIGINT, so checkpoint files are removed and a run's summary is written, marked partial.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from checkpointing.exits import report_failure
from icesheet.errors import InputError
from checkpointing.rundirs import Terminated, terminate_cleanly

COMMAND_MODULES = [
    "icesheet.commands.run",
    "icesheet.commands.gradient",
    "icesheet.commands.ensemble",
    "icesheet.commands.invert",
]


def import_firedrake() -> None:
    """Import Firedrake with PETSc seeing none of this program's command-line arguments (Firedrake hands sys.argv to
    PETSc, which would warn at exit about options it did not use)."""
    arguments = sys.argv[1:]
    del sys.argv[1:]
    try:
        import firedrake  # noqa: F401
    finally:
        sys.argv.extend(arguments)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one-line InputError (status 2) instead of a usage dump."""

    def error(self, message):
        raise InputError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="icesheet", description="Shallow-stream ice-flow model on Firedrake "
                                     "(units: metres, years, MPa).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every time step")
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except InputError as exc:
        return report_failure("icesheet", exc, debug="--debug" in (sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with terminate_cleanly():
            return int(args.handler(args) or 0)
    except (Exception, KeyboardInterrupt, Terminated) as exc:
        return report_failure(f"icesheet {args.command}", exc, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
