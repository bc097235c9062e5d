"""Prompt templates: how a class name becomes the texts the text encoder reads."""
from __future__ import annotations

from collections.abc import Sequence

from ..errors import UnsupportedOptionError

# Our own wording, for models trained on class names; "{}" is the class name.
VIDEO_TEMPLATES: tuple[str, ...] = (
    "a video of {}.",
    "a video of a person {}.",
    "a clip showing {}.",
    "someone is {}.",
    "footage of people {}.",
    "an example of the action {}.",
    "a short video: {}.",
    "the action of {}.",
)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "bare": ("{}",),
    "photo": ("a photo of a {}.",),
    "video": VIDEO_TEMPLATES,
}


def resolve_templates(templates: Sequence[str] | None | str, default: str) -> tuple[str, ...]:
    """A template-set name ("bare", "photo", "video"), a list of templates, or None for the model's `default`."""
    if templates is None:
        return (default,)
    if isinstance(templates, str):
        if templates in TEMPLATE_SETS:
            return TEMPLATE_SETS[templates]
        templates = (templates,)
    for template in templates:
        if "{}" not in template:
            raise UnsupportedOptionError(f"prompt template {template!r} has no '{{}}' where the class name goes")
    return tuple(templates)


def class_prompts(class_names: Sequence[str], templates: Sequence[str]) -> list[list[str]]:
    """[C][K] prompts: every template filled with every class name."""
    return [[template.format(name) for template in templates] for name in class_names]
