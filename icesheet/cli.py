"""``icesheet`` command line: one argparse subcommand per module in ``COMMAND_MODULES``.

A command module defines ``register(subparsers)``, which adds its subparser and sets ``handler`` (a function of the
parsed arguments returning an exit code).  To add a command, write its module and add it to the list.  Input errors
(icesheet.errors.InputError) print one line naming the bad field and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from icesheet.errors import InputError

COMMAND_MODULES = [
    "icesheet.commands.run",
    "icesheet.commands.gradient",
    "icesheet.commands.ensemble",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="icesheet", description="Shallow-stream ice-flow model on Firedrake "
                                     "(units: metres, years, MPa).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every time step")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except InputError as err:
        print(f"icesheet {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
