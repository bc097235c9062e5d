"""Every command in the user docs parses with the real CLI: `t2l ...` lines, and `torchrun ... train/train.py`
lines as `t2l train`; config files they name exist; `--set` keys are real config keys (the paths are
placeholders, so values are not validated)."""
import re
import shlex
from pathlib import Path

import pytest

from t2l_fast.cli import build_parser
from t2l_fast.training.config import ConfigError, TrainConfig, _assign

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("docs/YOUR_DATA.md", "docs/REPRODUCE.md")


def commands(doc: str):
    text = (ROOT / doc).read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
        lines += [line.strip() for line in joined.splitlines() if line.strip().startswith(("t2l ", "torchrun "))]
    return lines


def cli_words(command: str):
    words = shlex.split(command)
    if words[0] == "torchrun":
        return ["train", *words[next(i for i, w in enumerate(words) if w.endswith("train/train.py")) + 1:]]
    return words[1:]


@pytest.mark.parametrize("command", [c for doc in DOCS for c in commands(doc)])
def test_documented_command_parses(command):
    args = build_parser().parse_args(cli_words(command))
    assert callable(args.run)
    config = getattr(args, "config", None)
    if config and not config.startswith("runs/"):  # runs/...: written by a training run
        assert (ROOT / config).is_file(), config
    for item in getattr(args, "set", None) or []:
        key, _, value = item.partition("=")
        try:
            _assign(TrainConfig(), key, value, "doc")
        except ConfigError as e:
            pytest.fail(f"{command}: {e}")


def test_the_your_data_doc_covers_the_whole_path():
    used = {tuple(cli_words(c)[:2]) for c in commands("docs/YOUR_DATA.md")}
    for step in (("data", "check"), ("data", "transcode"), ("train", "--config"), ("eval", "--checkpoint"),
                 ("export", "onnx"), ("export", "trt"), ("export", "triton"), ("predict",)):
        assert any(u[:len(step)] == step for u in used), step


def test_the_reproduce_doc_has_the_whole_sequence():
    names = [cli_words(c)[0] for c in commands("docs/REPRODUCE.md")]
    assert names == ["convert-official", "data", "data", "eval", "eval", "eval", "data"]
