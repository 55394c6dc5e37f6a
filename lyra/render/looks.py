"""Named render presets ("looks"): how a scene is rendered, as one choice for the CLI and the viewer.

* ``"lyra"``: what Lyra's decoder is trained and rendered with (see LYRA_FACTS
  "Rendering"): 3DGUT (``with_ut`` + ``with_eval3d``), white background, near
  0.1, far 500. On a CPU machine this runs on the torch backend's 3DGUT path.
* ``"standard"``: classic EWA splatting as common 3DGS viewers draw it,
  white background, the renderer's default near/far.

:func:`default_look` picks ``"lyra"`` for scenes that came from Lyra (their
``origin`` is :data:`lyra.scene.LYRA_ORIGIN`: the official tensor files, scenes
decoded by our Lyra decoder, and files we wrote from those) and ``"standard"``
otherwise. :func:`look_options` gives the keyword arguments for
:func:`lyra.render.render` (and so for ``render_frames`` / ``render_video``).
"""

from __future__ import annotations

import dataclasses

from lyra.errors import InputDataError
from lyra.scene.gaussians import LYRA_ORIGIN


@dataclasses.dataclass(frozen=True)
class Look:
    """A render preset; ``background`` is RGB in [0, 1]."""

    name: str
    description: str
    with_ut: bool
    with_eval3d: bool
    background: tuple[float, float, float]
    near: float
    far: float


LOOKS: dict[str, Look] = {
    "lyra": Look("lyra", "Lyra's own renders: 3DGUT, white background, near 0.1, far 500",
                 True, True, (1.0, 1.0, 1.0), 0.1, 500.0),
    "standard": Look("standard", "standard 3DGS splatting (EWA), white background",
                     False, False, (1.0, 1.0, 1.0), 0.01, 1e10),
}
LOOK_NAMES = tuple(LOOKS)


def get_look(name: str) -> Look:
    """The preset called ``name``; raises InputDataError naming the choices."""
    try:
        return LOOKS[name]
    except KeyError:
        raise InputDataError(f"unknown look {name!r}; choose one of {', '.join(LOOK_NAMES)}") from None


def default_look(scene) -> str:
    """``"lyra"`` for a scene (Gaussians or GaussianSequence) that came from Lyra, else ``"standard"``."""
    return "lyra" if getattr(scene, "origin", None) == LYRA_ORIGIN else "standard"


def look_options(name: str, *, background: tuple[float, float, float] | None = None) -> dict:
    """``render`` keyword arguments of a look; ``background`` overrides the look's own."""
    look = get_look(name)
    return dict(
        with_ut=look.with_ut, with_eval3d=look.with_eval3d, near=look.near, far=look.far,
        background=look.background if background is None else tuple(background),
    )
