"""Exceptions with messages that name the bad file or value and the fix."""


class T2LError(Exception):
    """Base class of the errors t2l-fast raises on bad input."""


class CheckpointError(T2LError, ValueError):
    """A weights or checkpoint file is missing, corrupt, unsafe or does not fit the model."""


class ClassFileError(T2LError, ValueError):
    """A class-name or class-description file is malformed (the message names file:line)."""


class ConfigError(T2LError, ValueError):
    """A training config is malformed (the message names the key or value and the fix)."""


class MissingDependencyError(T2LError, ImportError):
    """An optional dependency is not installed (the message names the extra to install)."""


class UnsupportedOptionError(T2LError, ValueError):
    """An option this code path does not support (the message names the option and what to use instead)."""


class UnknownModelError(T2LError, ValueError):
    """A model name that is not registered (the message lists the registered ones)."""


class ModelConfigError(T2LError, ValueError):
    """A model config (registered, from a checkpoint's config.json or a manifest) that no model can have."""


class VideoShapeError(T2LError, ValueError):
    """A clip or frame of a shape the model or transform cannot take (the message names the shape it needs)."""


class InputFileError(T2LError, ValueError):
    """A file given to read is not of the kind the command reads (not JSON, another format); the message names it."""


class BackendError(T2LError, RuntimeError):
    """A runtime backend that cannot give its own figures (it fell back to another provider); the message says why."""
