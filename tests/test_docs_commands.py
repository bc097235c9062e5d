"""Every command in the user docs (README.md and every Markdown file under docs/) parses with the real CLI:
`t2l ...` lines, and `torchrun ... train/train.py` / `train/evaluate.py` lines as `t2l train` / `t2l eval`; config
files they name exist; `--set` keys are real config keys (the paths are placeholders, so values are not
validated). The docs' relative links resolve, and no reference points outside the repository."""
import re
import shlex
from pathlib import Path

import pytest

from t2l_fast.cli import build_parser
from t2l_fast.training.config import ConfigError, TrainConfig, _assign

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")))
SCRIPTS = {"train/train.py": "train", "train/evaluate.py": "eval"}  # torchrun targets: the CLI command each runs
COMMAND_START = ("t2l ", "torchrun ")


def commands(doc: str):
    text = (ROOT / doc).read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
        lines += [line.strip() for line in joined.splitlines() if line.strip().startswith(COMMAND_START)]
    return lines


def cli_words(command: str):
    words = shlex.split(command, comments=True)  # a trailing `# ...` is a comment, as in the shell
    if words[0] == "torchrun":
        at = next(i for i, w in enumerate(words) if w.endswith(tuple(SCRIPTS)))
        return [next(c for s, c in SCRIPTS.items() if words[at].endswith(s)), *words[at + 1:]]
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


def test_the_readme_and_the_moved_sections_are_parsed():
    for doc in ("README.md", "docs/DATA.md", "docs/TRAINING.md", "docs/DEPLOY.md", "docs/MODEL_CARD.md",
                "docs/benchmarks/README.md"):
        assert commands(doc), f"{doc}: no command parsed"


def test_no_command_hides_in_a_block_the_parser_skips():
    """Only ```bash blocks are parsed: a `t2l ...` line in any other fenced block would go unchecked."""
    for doc in DOCS:
        for lang, block in re.findall(r"```(\w*)\n(.*?)```", (ROOT / doc).read_text(), re.S):
            if lang != "bash":
                assert not any(line.strip().startswith(COMMAND_START) for line in block.splitlines()), (doc, lang)


def test_relative_links_resolve():
    for doc in DOCS:
        text = re.sub(r"```.*?```", "", (ROOT / doc).read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            path = (ROOT / doc).parent / file if file else ROOT / doc
            assert path.exists(), f"{doc}: link to {target}"
            assert ROOT in path.resolve().parents or path.resolve() == ROOT, f"{doc}: {target} leaves the repo"
            if anchor and path.suffix == ".md":
                assert anchor in anchors(path), f"{doc}: no heading for #{anchor} in {file}"


def anchors(path: Path):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", path.read_text(), flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_design_notes_are_cited_where_they_are():
    """The code, tests, configs and docs cite the design notes in docs/design/, which a clone has."""
    notes = "|".join(("T2L_SPEC", "RELIABILITY", "BASELINES_AND_CLAIMS"))
    files = [ROOT / d for d in DOCS] + [p for folder in ("t2l_fast", "tests", "train", "export", "bench")
                                       for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".yaml", ".md")]
    for path in files:
        text = re.sub(r"\[[^\]]*\]\(([^)\s]+)\)", r" \1", path.read_text())  # a link: its target, not its text
        assert "shared/" + "design" not in text, path
        for match in re.finditer(rf"(\S*?)\b({notes})\.md", text):
            inside = path.parent == ROOT / "docs" / "design" and not match.group(1).strip("[(`")
            assert inside or match.group(1).endswith("design/"), f"{path.relative_to(ROOT)}: {match.group(0)}"
        for name in ("T2L_SPEC", "RELIABILITY", "BASELINES_AND_CLAIMS"):
            assert (ROOT / "docs" / "design" / f"{name}.md").is_file()
