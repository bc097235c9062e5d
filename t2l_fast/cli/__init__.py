"""The `t2l` command: one module per command group, each registering its own parsers. Sub-commands import what
they need when they run, so `t2l --help` is instant."""
from __future__ import annotations

import argparse
import errno
import sys

from .. import __version__
from ..errors import T2LError
from . import bench, data, demo, export, info, predict, serve, train

EXIT_CODES = """exit codes: 0 done; 1 a finding (a failed gate, a check that found bad videos, a failed claim);
2 bad input (the message names the file or value and the fix); 130 / 143 stopped by SIGINT / SIGTERM (training
saves its state first)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2l", description="Efficient zero-shot video action recognition: "
                                     "T2L, ViFi-CLIP and CLIP.", epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"t2l-fast {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback (also accepted "
                        "after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (demo, info, data, predict, export, serve, train, bench):
        group.register(sub)
    return parser


def _one_line(error: BaseException) -> str:
    """An expected failure as one line: T2L errors say what to fix; OS errors name the path and the reason."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        fix = "free some space there" if error.errno == errno.ENOSPC else "check the path and its permissions"
        return f"{where}{error.strerror} ({fix})"
    if isinstance(error, T2LError):
        return str(error)
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a bad option (argparse printed why): its exit code
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (T2LError, OSError) as e:
        if debug:
            raise
        print(f"t2l {args.command}: error: {_one_line(e)}  (--debug shows the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"t2l {args.command}: interrupted", file=sys.stderr)
        return 130
