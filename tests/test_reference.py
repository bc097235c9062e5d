"""The generated references stay in sync with the parsers and the config dataclasses."""
import dataclasses
from pathlib import Path

from t2l_fast.cli.reference import FILES, config_reference
from t2l_fast.training.config import DataConfig, OptimConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def test_committed_references_match_what_the_code_generates():
    for name, make in FILES.items():
        committed = (ROOT / "docs" / name).read_text()
        assert committed == make(), f"docs/{name} is stale: run `python -m t2l_fast.cli.reference docs/`"


def test_every_config_key_is_documented_with_a_meaning():
    text = config_reference()
    for prefix, cls in (("", TrainConfig), ("data.", DataConfig), ("optim.", OptimConfig)):
        for field in dataclasses.fields(cls):
            if field.name in ("data", "optim"):
                continue
            row = next(line for line in text.splitlines() if line.startswith(f"| `{prefix}{field.name}` |"))
            assert not row.endswith("|  |"), f"{prefix}{field.name} has no comment in its dataclass"
