"""Every `t2l ...` command in docs/REPRODUCE.md parses with the real CLI (its paths are placeholders)."""
import re
import shlex
from pathlib import Path

import pytest

from t2l_fast.cli import build_parser

DOC = Path(__file__).resolve().parents[1] / "docs" / "REPRODUCE.md"


def commands():
    block = re.search(r"```bash\n(.*?)```", DOC.read_text(), re.S).group(1)
    joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("t2l ")]


def test_the_doc_has_the_whole_sequence():
    names = [shlex.split(c)[1] for c in commands()]
    assert names == ["convert-official", "data", "data", "eval", "eval", "eval", "data"]


@pytest.mark.parametrize("command", commands())
def test_command_parses(command):
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.run)
