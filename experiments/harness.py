"""What every experiment shares: its command line, logging, output folder, CSV and PNG writers, summary JSON.

An experiment is a module with ``NAME``, a one-line docstring, and ``run(out: Path, full: bool) -> dict``.  ``run``
writes its figures and tables into ``out`` (``DIR/<NAME>/``) and returns a summary with at least

* ``headline``: one sentence stating the result the experiment checks, with its numbers;
* ``headline_ok``: whether that check passed (an experiment that misses says so; it does not raise).

``main_for(module)`` turns such a module into ``python -m experiments.<name> --out DIR [--full]``.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)

__all__ = ["setup_logging", "write_csv", "save_figure", "run_one", "main_for", "plt"]

FIGURE_DPI = 90


def setup_logging() -> None:
    """INFO-level logging to stderr, one line per message, once per process."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
    for chatty in ("loopy", "pyop2", "firedrake", "tsfc", "UFL"):  # kernel-compilation progress at INFO
        logging.getLogger(chatty).setLevel(logging.WARNING)


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` (dicts with the same keys, in order) as CSV with a header line."""
    if not rows:
        raise ValueError(f"{path}: no rows to write")
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def save_figure(fig, path: Path) -> Path:
    """Save ``fig`` as a PNG at a resolution that keeps gallery images small, then close it."""
    fig.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _json_safe(value):
    """Replace non-finite floats (JSON has no inf/nan) by strings, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def run_one(module, out_root: Path, full: bool, **options) -> dict:
    """Run one experiment module into ``out_root/<NAME>/``, write its ``summary.json``, log its headline;
    ``options`` (an experiment's own command-line options) go to its ``run`` and into the summary.

    Returns the summary with ``name``, ``seconds`` and ``headline_ok`` filled in."""
    log = logging.getLogger(f"experiments.{module.NAME}")
    out = Path(out_root) / module.NAME
    out.mkdir(parents=True, exist_ok=True)
    log.info("start (%s size%s) -> %s", "full" if full else "default",
             "".join(f", {k} {v}" for k, v in options.items()), out)
    start = time.perf_counter()
    summary = dict(module.run(out, full, **options))
    summary = {"name": module.NAME, "full": full, **options, **summary, "seconds": round(time.perf_counter() - start, 2)}
    if "headline" not in summary or "headline_ok" not in summary:
        raise RuntimeError(f"experiment {module.NAME}: run() must return 'headline' and 'headline_ok'")
    summary["headline_ok"] = bool(summary["headline_ok"])
    (out / "summary.json").write_text(json.dumps(_json_safe(summary), indent=2) + "\n")
    if summary["headline_ok"]:
        log.info("headline OK: %s (%.1f s)", summary["headline"], summary["seconds"])
    else:
        log.warning("headline MISSED: %s (%.1f s)", summary["headline"], summary["seconds"])
    return summary


def parser_for(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True, help="output folder; results go to OUT/<experiment>/")
    parser.add_argument("--full", action="store_true", help="full-size version (slower) instead of the default size")
    return parser


def main_for(module, argv=None) -> int:
    """``python -m experiments.<name> --out DIR [--full]``: exit status 0 when the headline check passed, 1 if not."""
    args = parser_for((module.__doc__ or module.NAME).strip().splitlines()[0]).parse_args(argv)
    setup_logging()
    summary = run_one(module, args.out, args.full)
    return 0 if summary["headline_ok"] else 1
