"""Progress bars that keep a log file readable: live on a terminal, at most one line per 30 s otherwise."""
import sys

from tqdm import tqdm

LOG_INTERVAL_S = 30.0  # seconds between redraws when stderr is a file or a pipe


def progress_bar(iterable=None, **options) -> tqdm:
    """A tqdm bar (same arguments) that redraws at most every 30 s when stderr is not a terminal."""
    if not sys.stderr.isatty():  # tqdm's monitor thread would otherwise redraw every maxinterval (10 s)
        options.setdefault("mininterval", LOG_INTERVAL_S)
        options.setdefault("maxinterval", LOG_INTERVAL_S)
    return tqdm(iterable, **options)
