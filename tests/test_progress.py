"""Progress bars in a log file: a handful of lines however many updates, never a redraw per update."""
import io
import time

from t2l_fast.progress import progress_bar


def test_a_bar_in_a_log_file_draws_a_few_lines_not_one_per_update():
    log = io.StringIO()
    with progress_bar(total=2000, file=log, desc="epoch 1/1") as bar:  # pytest's stderr is not a terminal
        for _ in range(2000):
            time.sleep(0.0005)
            bar.update()
    redraws = log.getvalue().count("\r")
    assert 1 <= redraws <= 3, log.getvalue()  # the first line, the last, and at most one in between
