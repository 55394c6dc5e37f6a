"""A fix sent to viser's web client: splat quads get a bounding sphere three.js can compute.

viser 1.1.1 draws all Gaussians as one instanced quad mesh whose ``position`` attribute has two
components per vertex (the quad corners). three.js frustum-culls every mesh and, the first time
it sees a geometry, calls ``BufferGeometry.computeBoundingSphere()``, which reads three components
per vertex: the last vertex's z lies past the end of the array, so the radius is NaN and the
browser console logs "computeBoundingSphere(): Computed radius is NaN" on every first load (and
whenever the splat count changes). Our buffers are not the cause (they are finite, see
tests/viewer/test_issue21_panels.py); the NaN sphere is also harmless (it never culls).

The script below, run once in each page through viser's ``RunJavascriptMessage`` (the message its
Plotly support uses), gives such geometries (instanced, 2-component positions) an infinite bounding
sphere instead: never culled, exactly as drawn today, without the error. Everything else keeps
three.js's own computation. It reaches three.js through ``window.__viserMutable.scene``, which viser
exposes for its own browser tests; if that is missing the script does nothing. Remove this module
when viser's client gives its splat geometry a bounding sphere itself.
"""

from __future__ import annotations

import viser
from viser import _messages

SPLAT_BOUNDING_SPHERE_JS = """
(function giveSplatQuadsABoundingSphere(attempt) {
  const mutable = window.__viserMutable;
  let geometry = null;
  if (mutable && mutable.scene) {
    mutable.scene.traverse((o) => {
      const p = o.geometry && o.geometry.isBufferGeometry && o.geometry.attributes.position;
      if (!geometry && p && p.itemSize === 3) geometry = o.geometry;
    });
  }
  if (!geometry) {
    if (attempt < 2000) setTimeout(() => giveSplatQuadsABoundingSphere(attempt + 1), 5);
    return;
  }
  let proto = Object.getPrototypeOf(geometry);
  while (proto && !Object.prototype.hasOwnProperty.call(proto, "computeBoundingSphere")) {
    proto = Object.getPrototypeOf(proto);
  }
  if (!proto || proto.__lyraSplatQuads) return;
  proto.__lyraSplatQuads = true;
  if (geometry.boundingSphere === null) geometry.computeBoundingSphere();
  const template = geometry.boundingSphere;
  const compute = proto.computeBoundingSphere;
  proto.computeBoundingSphere = function () {
    const position = this.attributes && this.attributes.position;
    if (this.isInstancedBufferGeometry && position && position.itemSize === 2) {
      const sphere = this.boundingSphere || template.clone();
      sphere.center.set(0, 0, 0);
      sphere.radius = Infinity;
      this.boundingSphere = sphere;
      return;
    }
    return compute.call(this);
  };
})(0);
"""


def install_client_patches(server: viser.ViserServer) -> None:
    """Queue the client fixes on ``server``: kept in its scene state, so every page that connects runs them first."""
    server.gui._websock_interface.queue_message(_messages.RunJavascriptMessage(source=SPLAT_BOUNDING_SPHERE_JS))
