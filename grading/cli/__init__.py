"""The ``onfh`` command line: ``onfh grade | phantoms | train | benchmark``.

Each sub-command lives in its own module exposing ``register(subparsers)``,
which adds a parser whose ``func`` default takes the parsed arguments and
returns the process exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS = ("grade", "phantoms", "train", "benchmark")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onfh",
        description=(
            "Grade osteonecrosis of the femoral head on axial T1 hip MRI "
            "(research and teaching software, not a medical device)."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"grading.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
