"""The `t2l` command: one module per command group, each registering its own parsers. Sub-commands import what
they need when they run, so `t2l --help` is instant."""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import T2LError
from . import bench, data, export, info, predict, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2l", description="Efficient zero-shot video action recognition: "
                                     "T2L, ViFi-CLIP and CLIP.")
    parser.add_argument("--version", action="version", version=f"t2l-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (info, data, predict, export, train, bench):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except T2LError as e:
        print(f"t2l {args.command}: error: {e}", file=sys.stderr)
        return 2
