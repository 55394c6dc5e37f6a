"""The CLI's one adapter from :mod:`lyra.progress` callbacks to a tqdm bar on stderr."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from time import monotonic

from lyra.progress import Progress, format_duration

_RESOLUTION = 1000  # the bar counts thousandths, so any fraction the library reports shows
LONG_CALL_S = 60.0  # projected totals above this get a one-line estimate when the first progress arrives


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Progress | None]:
    """Yield a ``progress(fraction, text)`` that drives a tqdm bar (``None`` when ``enabled`` is False).

    The bar shows the elapsed time and tqdm's estimate of the time left. At the
    first report (a video's first frame) a call projected to take over
    ``LONG_CALL_S`` also prints one line with its estimated total and end time,
    so a 50-minute render says so after its first frame, not at the end.
    """
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    start = monotonic()
    told = False
    with tqdm(total=_RESOLUTION, desc=description, file=sys.stderr, bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}") as bar:

        def progress(fraction: float, text: str = "") -> None:
            nonlocal told
            if not told and 0.0 < fraction < 1.0:
                told = True
                total = (monotonic() - start) / fraction
                if total > LONG_CALL_S:
                    end = time.strftime("%H:%M", time.localtime(time.time() + total * (1.0 - fraction)))
                    bar.write(f"{description}: estimated {format_duration(total)} in all, done at about {end}", file=sys.stderr)
            target = round(fraction * _RESOLUTION)
            if target > bar.n:
                bar.update(target - bar.n)
            if text:
                bar.set_postfix_str(text, refresh=False)
            bar.refresh()

        yield progress
