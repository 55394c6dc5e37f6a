"""A share page: one self-contained HTML file that shows a scene offline, built with viser's own embedding.

viser 1.1 records scene messages with a ``StateSerializer`` (``ViserServer.get_scene_serializer``) and
``StateSerializer.as_html`` puts the recording, zstd-compressed and base64-encoded, into its single-file
web client (``viser/client/build/index.html``: the JS, CSS and the default environment map inlined). The
page needs no server and no network: open it from disk, orbit with the mouse.

* The scene is added to a short-lived viser server bound to 127.0.0.1 on a free port (it is where viser's
  scene API keeps its messages; nothing of ours connects to it) and stopped as soon as the recording is
  serialized. It has no Origin guard (that lives in the viewer, which the library cannot import): for
  those seconds a local page could read the scene being shared, nothing else.
* The starting view is the framed scene's first camera (:func:`lyra.render.framing.frame_scene`).
* A 4D scene (:class:`GaussianSequence`) is recorded as every frame added hidden and a visibility switch
  every ``1/fps`` seconds: the page shows viser's playback bar (time slider, play/pause, speed).
* viser's client draws one colour per splat (no SH): a scene with SH beyond DC has its colours baked for
  the starting view (``eval_sh`` along the view rays), and the page says so.
* ``max_mb``: a page over the budget is rebuilt from splats merged by :func:`lyra.edit.simplify.simplify`
  (the same fraction of every frame) until it fits; the page and :attr:`SharePage.notes` say so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import io
import os
from pathlib import Path

import numpy as np
import torch

from lyra.errors import InputDataError, SceneFileError
from lyra.fileio import atomic_write
from lyra.progress import Progress, report, subrange
from lyra.render.framing import frame_scene
from lyra.scene.gaussians import Gaussians
from lyra.scene.sequence import GaussianSequence
from lyra.scene.sh import eval_sh

DEFAULT_MAX_MB = 50.0
NOTE_ELEMENT_ID = "lyra-share-note"
_MAX_REBUILDS = 4
_FIT_MARGIN = 0.93  # aim a little under the budget: the size is not exactly linear in the splat count


@dataclasses.dataclass
class SharePage:
    """A built share page: ``html`` and what was done to fit it."""

    html: str
    splats: list[int]  # per frame, as shown
    original_splats: list[int]  # per frame, as given
    notes: list[str]  # what a viewer of the page is told (decimation, baked colours)

    @property
    def size_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def _frames(scene: Gaussians | GaussianSequence) -> tuple[list[Gaussians], float | None]:
    if isinstance(scene, GaussianSequence):
        return [scene.frames[i] for i in range(len(scene))], float(scene.fps)
    if isinstance(scene, Gaussians):
        return [scene], None
    raise InputDataError(f"a share page shows Gaussians or a GaussianSequence, found {type(scene).__name__}")


def _view_colors(g: Gaussians, eye: torch.Tensor) -> np.ndarray:  # -> [N, 3] in 0..1
    """Colours seen from ``eye``: the SH evaluated along the view rays (the DC colour when there is no SH)."""
    if g.sh_degree == 0:
        return g.rgb().detach().float().clamp(0, 1).numpy()
    dirs = g.means.detach().float() - eye.float()
    return eval_sh(g.sh.detach().float(), dirs).clamp(0, 1).numpy()


def _record(frames: list[Gaussians], fps: float | None, framing, dark: bool) -> str:
    """The page HTML of ``frames`` recorded through viser (see the module docstring)."""
    import viser

    with contextlib.redirect_stdout(io.StringIO()):  # viser prints its URL banner whatever ``verbose`` says
        server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    try:
        eye = framing.origin_c2w[:3, 3].float()
        server.scene.set_up_direction(tuple(float(v) for v in framing.up))
        server.initial_camera.position = tuple(float(v) for v in eye)
        server.initial_camera.look_at = tuple(float(v) for v in framing.look_at)
        server.initial_camera.up = tuple(float(v) for v in framing.up)
        handles = []
        for i, g in enumerate(frames):
            handles.append(server.scene.add_gaussian_splats(
                f"/lyra/frame_{i:04d}",
                centers=g.means.detach().float().numpy(),
                covariances=g.covariances().detach().float().numpy(),
                rgbs=_view_colors(g, eye),
                opacities=g.opacities.detach().float().numpy()[:, None],
                visible=i == 0,
            ))
        serializer = server.get_scene_serializer()
        if fps is not None and len(frames) > 1:
            for i in range(1, len(frames) + 1):
                serializer.insert_sleep(1.0 / fps)
                if i < len(frames):
                    with server.atomic():
                        handles[i - 1].visible = False
                        handles[i].visible = True
        return serializer.as_html(dark_mode=dark)
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            server.stop()


def _with_notes(page: str, title: str, notes: list[str]) -> str:
    """``page`` with its title set and ``notes`` shown in a small box over the bottom-left corner."""
    page = page.replace("<title>Viser</title>", f"<title>{html.escape(title)}</title>", 1)
    if not notes:
        return page
    items = "".join(f"<div>{html.escape(note)}</div>" for note in notes)
    box = (f'<div id="{NOTE_ELEMENT_ID}" style="position:fixed;left:8px;bottom:8px;z-index:10000;max-width:40em;'
           f'padding:6px 10px;font:12px sans-serif;color:#222;background:rgba(255,255,255,0.85);'
           f'border-radius:4px;pointer-events:none">{items}</div>')
    end = page.rindex("</body>")
    return page[:end] + box + page[end:]


def share_page(
    scene: Gaussians | GaussianSequence,
    *,
    max_mb: float = DEFAULT_MAX_MB,
    title: str = "Lyra scene",
    dark: bool = False,
    progress: Progress | None = None,
) -> SharePage:
    """The share page of ``scene`` (see the module docstring), at most ``max_mb`` megabytes (10^6 bytes).

    Raises InputDataError for an empty scene, a non-positive budget, or a budget too small for even a
    heavily decimated scene (the viser client alone is about 0.8 MB).
    """
    from lyra.edit.simplify import simplify

    if not (max_mb > 0):
        raise InputDataError(f"--max-mb: expected a positive size, found {max_mb}")
    frames, fps = _frames(scene)
    frames = [g.drop_invalid()[0] for g in frames]  # NaN/Inf splats would poison the client's sort
    original = [len(g) for g in frames]
    if sum(original) == 0:
        raise InputDataError("a share page needs at least one splat; the scene is empty")
    framing = frame_scene(scene)
    budget = max_mb * 1e6
    notes = []
    degree = max(g.sh_degree for g in frames)
    if degree > 0:
        notes.append(f"Colours are baked for the starting view: viser's web client draws one colour per splat, "
                     f"so the view-dependent colour (SH degree {degree}) of the scene does not change as you orbit.")
    shown, fraction, overhead = frames, 1.0, None
    for attempt in range(_MAX_REBUILDS + 1):
        report(progress, attempt / (_MAX_REBUILDS + 1), f"recording {sum(len(g) for g in shown)} splats")
        page = _record(shown, fps, framing, dark)
        size = len(page.encode("utf-8"))
        if size <= budget:
            break
        if attempt == _MAX_REBUILDS:
            raise InputDataError(f"the share page is {size / 1e6:.1f} MB even with {fraction:.1%} of the splats; "
                                 f"raise --max-mb above {max_mb:g}")
        if overhead is None:  # the page of one splat: the client and the recording's frame
            overhead = len(_record([next(g for g in frames if len(g))[:1]], None, framing, dark).encode("utf-8"))
        if budget <= overhead:
            raise InputDataError(f"--max-mb {max_mb:g}: the viewer alone takes {overhead / 1e6:.2f} MB")
        fraction *= _FIT_MARGIN * (budget - overhead) / max(size - overhead, 1)
        step = subrange(progress, attempt / (_MAX_REBUILDS + 1), (attempt + 1) / (_MAX_REBUILDS + 1), "decimating: ")
        shown = [simplify(g, max(1, int(len(g) * fraction)), progress=step) if len(g) > 1 else g for g in frames]
    counts = [len(g) for g in shown]
    if counts != original:
        notes.append(f"Decimated to fit {max_mb:g} MB: {sum(counts):,} of {sum(original):,} splats "
                     f"(neighbours merged with lyra.edit.simplify).")
    report(progress, 1.0, f"{size / 1e6:.1f} MB")
    return SharePage(_with_notes(page, title, notes), counts, original, notes)


def write_share_page(
    scene: Gaussians | GaussianSequence,
    path: str | os.PathLike,
    *,
    max_mb: float = DEFAULT_MAX_MB,
    title: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> SharePage:
    """Build the share page of ``scene`` and write it to ``path`` (one file, atomically; an existing
    ``path`` is replaced only with ``overwrite``, else SceneFileError)."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputDataError(f"a share page is an .html file, found {path.name!r}")
    if os.path.lexists(path) and not overwrite:
        raise SceneFileError(path, "a new path (or overwrite)", "an existing file")
    page = share_page(scene, max_mb=max_mb, title=title or path.stem, progress=progress)
    try:
        with atomic_write(path, overwrite=overwrite) as handle:
            handle.write(page.html.encode("utf-8"))
    except FileExistsError:
        raise SceneFileError(path, "a new path (or overwrite)", "an existing file") from None
    return page
