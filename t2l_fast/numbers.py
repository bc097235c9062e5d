"""One rule for numbers from the command line and from config files: the right type (a bool is not a number),
finite, and in range. The CLI's option parsers and the training config schema both use it."""
from __future__ import annotations

import math

from .errors import T2LError


class NumberError(T2LError, ValueError):
    """A number of the wrong type, not finite, or out of range; the message names it and the range."""


def checked_number(value: object, what: str, *, integer: bool = False, minimum: float | None = None,
                   above: float | None = None, maximum: float | None = None) -> int | float:
    """`value` when it is a finite number (an integer if `integer`) with minimum <= value, above < value and
    value <= maximum; else a NumberError naming `what`."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NumberError(f"{what} = {value!r}: not {kind}")
    if not math.isfinite(value):
        raise NumberError(f"{what} = {value!r}: not a finite number")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise NumberError(f"{what} = {value!r}: not {kind}")
        value = int(value)
    in_range = ((minimum is None or value >= minimum) and (above is None or value > above)
                and (maximum is None or value <= maximum))
    if not in_range:
        wanted = [f"{sign} {bound}" for sign, bound in ((">=", minimum), (">", above), ("<=", maximum))
                  if bound is not None]
        raise NumberError(f"{what} = {value!r}: must be {' and '.join(wanted)}")
    return value


def parse_number(text: str, what: str, *, integer: bool = False, **limits: float) -> int | float:
    """A number typed as text (an option's value), checked as checked_number does."""
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise NumberError(f"{what} = {text!r}: not {'an integer' if integer else 'a number'}") from None
    return checked_number(value, what, integer=integer, **limits)
