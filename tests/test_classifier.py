import warnings

import pytest
import torch

import t2l_fast
from t2l_fast.text.classifier import build_classifier
from t2l_fast.text.prompts import VIDEO_TEMPLATES
from t2l_fast.text.tokenize import tokenize

CLASSES = ["run", "jump", "swim"]


def test_template_average_renormalized_and_batched():
    model = t2l_fast.create_model("clip_tiny")
    clf = build_classifier(model, CLASSES, templates="video", batch_size=5)  # 24 prompts over 5 batches
    with torch.no_grad():
        per_template = torch.stack([model.encode_text(tokenize([t.format(c) for t in VIDEO_TEMPLATES]))
                                    for c in CLASSES])  # [C, K, D]
    expected = torch.nn.functional.normalize(per_template.mean(1), dim=-1)
    torch.testing.assert_close(clf.embeddings, expected, atol=1e-6, rtol=1e-5)


def test_score_averaging_mode():
    model = t2l_fast.create_model("clip_tiny")
    clf = build_classifier(model, CLASSES, templates=["{}", "a video of {}."], combine="score")
    assert clf.embeddings.shape == (2, 3, model.config.embed_dim)
    video = torch.nn.functional.normalize(torch.randn(4, model.config.embed_dim), dim=-1)
    probs = clf.probabilities(video, 100.0)
    expected = sum((100 * video @ clf.embeddings[k].t()).softmax(-1) for k in range(2)) / 2
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))


def test_model_default_prompt_is_used():
    model = t2l_fast.create_model("vificlip_tiny")
    clf = build_classifier(model, CLASSES)
    with torch.no_grad():
        expected = model.encode_text(tokenize([f"a photo of a {c}." for c in CLASSES]))
    torch.testing.assert_close(clf.embeddings, expected)


def test_t2l_warns_on_bare_names_but_not_with_descriptions():
    model = t2l_fast.create_model("t2l_tiny").eval()
    with pytest.warns(UserWarning, match="trained on class descriptions"):
        build_classifier(model, CLASSES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = build_classifier(model, CLASSES, descriptions=["fast on foot", "off the ground", "in water"])
    with torch.no_grad():
        torch.testing.assert_close(clf.embeddings, model.encode_text(tokenize(["fast on foot", "off the ground",
                                                                                "in water"])))


def test_cache_hit_and_keys(tmp_path, monkeypatch):
    model = t2l_fast.create_model("clip_tiny")
    first = build_classifier(model, CLASSES, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    calls = []
    original = type(model).encode_text
    monkeypatch.setattr(type(model), "encode_text", lambda self, t: calls.append(1) or original(self, t))
    again = build_classifier(model, CLASSES, cache_dir=tmp_path)
    assert not calls, "a cache hit must not run the text encoder"
    torch.testing.assert_close(again.embeddings, first.embeddings)
    build_classifier(model, CLASSES + ["dive"], cache_dir=tmp_path)  # other texts: new entry
    with torch.no_grad():
        model.backbone.ln_final.weight.mul_(2)  # other text weights: new entry
    build_classifier(model, CLASSES, cache_dir=tmp_path)
    with torch.no_grad():
        model.backbone.visual.proj.mul_(2)  # vision-only weights don't matter to text embeddings: hit
    build_classifier(model, CLASSES, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.safetensors"))) == 3


def test_corrupt_cache_entry_is_rebuilt(tmp_path):
    model = t2l_fast.create_model("clip_tiny")
    good = build_classifier(model, CLASSES, cache_dir=tmp_path)
    entry = next(tmp_path.glob("*.safetensors"))
    entry.write_bytes(b"garbage")
    torch.testing.assert_close(build_classifier(model, CLASSES, cache_dir=tmp_path).embeddings, good.embeddings)


def test_bad_arguments():
    model = t2l_fast.create_model("clip_tiny")
    with pytest.raises(ValueError, match="no '\\{\\}'"):
        build_classifier(model, CLASSES, templates=["a video"])
    with pytest.raises(ValueError, match="2 descriptions for 3 classes"):
        build_classifier(model, CLASSES, descriptions=["a", "b"])
    with pytest.raises(ValueError, match="combine"):
        build_classifier(model, CLASSES, combine="vote")


def test_classifier_restores_training_mode():
    model = t2l_fast.create_model("clip_tiny").train()
    build_classifier(model, CLASSES)
    assert model.training
