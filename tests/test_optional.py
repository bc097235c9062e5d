import pytest

from t2l_fast import optional
from t2l_fast.errors import MissingDependencyError


def test_require_names_the_extra():
    with pytest.raises(MissingDependencyError, match=r"pip install 't2l-fast\[dali\]'"):
        optional.require("nvidia_dali_not_installed_here", "dali", "GPU decoding")


def test_onnxruntime_double_install_is_reported(monkeypatch):
    versions = {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.0"}
    monkeypatch.setattr(optional, "installed", versions.get)
    message = optional.onnxruntime_conflict()
    assert "onnxruntime 1.32.0" in message and "onnxruntime-gpu 1.31.0" in message and "uninstall" in message
    with pytest.warns(RuntimeWarning, match="overwrite each other"):
        try:
            optional.import_onnxruntime()
        except MissingDependencyError:
            pass  # onnxruntime itself is not in the default test environment
    versions.pop("onnxruntime-gpu")
    assert optional.onnxruntime_conflict() is None


def test_extras_never_combine_onnxruntime_flavours():
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    for name, requirements in extras.items():
        flavours = {r.split("[")[0].split(">")[0].split("=")[0].strip() for r in requirements} & {
            "onnxruntime", "onnxruntime-gpu"}
        assert len(flavours) <= 1, f"extra {name} installs both onnxruntime flavours"
    assert [{"extra": "onnx"}, {"extra": "onnx-gpu"}] in project["tool"]["uv"]["conflicts"]
    assert any(r.startswith("nvidia-dali-cuda") for r in extras["dali"])
