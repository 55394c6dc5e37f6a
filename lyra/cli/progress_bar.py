"""The CLI's one adapter from :mod:`lyra.progress` callbacks to a tqdm bar on stderr."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from lyra.progress import Progress

_RESOLUTION = 1000  # the bar counts thousandths, so any fraction the library reports shows


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Progress | None]:
    """Yield a ``progress(fraction, text)`` that drives a tqdm bar (``None`` when ``enabled`` is False)."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=_RESOLUTION, desc=description, file=sys.stderr, bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}") as bar:

        def progress(fraction: float, text: str = "") -> None:
            target = round(fraction * _RESOLUTION)
            if target > bar.n:
                bar.update(target - bar.n)
            if text:
                bar.set_postfix_str(text, refresh=False)
            bar.refresh()

        yield progress
