"""The ``onfh`` command line: ``onfh grade | phantoms | train | benchmark | phantoms-b``.

Each sub-command lives in its own module exposing ``register(subparsers)``,
which adds a parser whose ``func`` default takes the parsed arguments and
returns the process exit status.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# With more runnable threads than cores (other jobs on a shared machine), OpenMP's
# default spin-waiting made training and inference 3-8x slower here; passive waiting
# does not. Only effective before torch is imported, so it is set here, first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SUBCOMMANDS = ("grade", "phantoms", "train", "benchmark", "phantoms-b")


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
        try:
            module = importlib.import_module(f"grading.cli.{name.replace('-', '_')}")
        except ImportError as exc:
            # one sub-command whose dependencies are missing must not take the others
            # down: it stays listed and says why it cannot run
            _register_unavailable(subparsers, name, exc)
            continue
        module.register(subparsers)
    return parser


def _register_unavailable(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, exc: ImportError
) -> None:
    reason = f"onfh {name} is unavailable: {exc}"
    # no option prefixes: whatever arguments follow are accepted, then refused with reason
    p = subparsers.add_parser(name, help=f"(unavailable: {exc})", add_help=False, prefix_chars="\0")
    p.add_argument("rest", nargs="*")

    def fail(_args: argparse.Namespace) -> int:
        print(reason, file=sys.stderr)
        return 2

    p.set_defaults(func=fail)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
