"""Edit panel: select (box, sphere, screen rectangle, click, attribute filters), prune, transform, recolor, undo.

A transform gizmo in the scene is the box/sphere centre and the handle for
moving the selection: "Apply gizmo move" moves (and rotates) the selection by
the gizmo's motion since it was last applied.
"""

from __future__ import annotations

import numpy as np
import torch
import viser

from lyra.edit.ops import quat_multiply
from lyra.render.camera import Camera
from viewer import edit_actions as act

SCOPE_LABELS = {"All frames": "all", "Current frame": "current"}


class EditPanel:
    key = "edit"

    def __init__(self, app):
        self.app = app
        gui, scene = app.server.gui, app.server.scene
        self.scope = gui.add_dropdown("Apply to", list(SCOPE_LABELS), initial_value="All frames",
                                      hint="For sequences: every frame (selection evaluated per frame) or the current one")
        self.mode = gui.add_dropdown("Selection mode", ["replace", "add", "subtract", "intersect"], initial_value="replace")
        with gui.add_folder("Select"):
            self.show_gizmo = gui.add_checkbox("Show box / gizmo", False)
            self.box_size = gui.add_vector3("Box size", (1.0, 1.0, 1.0), min=(0.0, 0.0, 0.0), step=0.01)
            self.box_button = gui.add_button("Select in box")
            self.radius = gui.add_number("Sphere radius", 0.5, min=0.0, step=0.01)
            self.sphere_button = gui.add_button("Select in sphere")
            self.rect_button = gui.add_button("Drag a rectangle", hint="Then drag on the scene (viser's rectangle select)")
            self.click_button = gui.add_button("Click a splat", hint="Then click on the scene")
            with gui.add_folder("Filters", expand_by_default=False):
                self.opacity = gui.add_slider("Opacity below", 0.0, 1.0, 0.01, 0.1)
                self.opacity_button = gui.add_button("Select low opacity")
                self.scale_max = gui.add_number("Largest scale above", 0.1, min=0.0, step=0.001)
                self.scale_button = gui.add_button("Select large splats")
                self.distance = gui.add_number("Distance from center above", 5.0, min=0.0, step=0.1)
                self.distance_button = gui.add_button("Select far splats")
                self.color = gui.add_rgb("Color", (255, 255, 255))
                self.color_tol = gui.add_slider("Color tolerance", 0.0, 1.0, 0.01, 0.1)
                self.color_button = gui.add_button("Select by color")
            self.invert_button = gui.add_button("Invert selection")
            self.clear_button = gui.add_button("Clear selection")
        with gui.add_folder("Prune"):
            self.delete_button = gui.add_button("Delete selection", icon=viser.Icon.TRASH, color="red")
            self.crop_button = gui.add_button("Keep only selection", icon=viser.Icon.CROP)
            self.floater_k = gui.add_slider("Floater neighbours", 4, 64, 1, 16)
            self.floater_std = gui.add_slider("Floater std ratio", 0.5, 5.0, 0.1, 2.0)
            self.floater_button = gui.add_button("Remove floaters")
            self.simplify_target = gui.add_text("Simplify to", "50%", hint="Splats to keep per frame: a count or a percentage")
            self.simplify_button = gui.add_button("Simplify", hint="Merge neighbouring splats (moment matching) down to the target")
        with gui.add_folder("Transform & color", expand_by_default=False):
            self.move_button = gui.add_button("Apply gizmo move", hint="Move/rotate the selection by the gizmo's motion")
            self.scale_factor = gui.add_number("Scale factor", 1.1, min=0.01, step=0.05)
            self.scale_apply = gui.add_button("Scale selection")
            self.tint_color = gui.add_rgb("Tint color", (255, 128, 0))
            self.tint_strength = gui.add_slider("Tint strength", 0.0, 1.0, 0.05, 0.5)
            self.tint_button = gui.add_button("Tint selection")
            self.bright = gui.add_slider("Brightness", 0.0, 3.0, 0.05, 1.2)
            self.bright_button = gui.add_button("Apply brightness")
            self.sat = gui.add_slider("Saturation", 0.0, 3.0, 0.05, 1.2)
            self.sat_button = gui.add_button("Apply saturation")
        with gui.add_folder("History"):
            self.undo_button = gui.add_button("Undo", icon=viser.Icon.ARROW_BACK_UP)
            self.redo_button = gui.add_button("Redo", icon=viser.Icon.ARROW_FORWARD_UP)
            self.history = gui.add_markdown("_No edits yet._")

        self.gizmo = scene.add_transform_controls("/edit/gizmo", scale=0.5, visible=False)
        self.box = scene.add_box("/edit/gizmo/box", color=(255, 64, 200), dimensions=(1.0, 1.0, 1.0), wireframe=True, visible=False)
        self._anchor = (np.array(self.gizmo.wxyz), np.array(self.gizmo.position))
        self._wire()

    # ------------------------------------------------------------ wiring
    def _wire(self) -> None:
        app, state = self.app, self.app.state
        run = lambda label, fn: (lambda e: app.action(label, fn, e.client))  # noqa: E731
        mode = lambda: self.mode.value  # noqa: E731
        self.scope.on_update(lambda e: state.set_scope(SCOPE_LABELS[self.scope.value]))
        self.show_gizmo.on_update(lambda e: self._show_gizmo(self.show_gizmo.value))
        self.box_size.on_update(lambda e: setattr(self.box, "dimensions", tuple(self.box_size.value)))
        self.box_button.on_click(run("Box select", lambda: act.select_box(
            state, self.gizmo.position, self.gizmo.wxyz, np.asarray(self.box_size.value) / 2, mode())))
        self.sphere_button.on_click(run("Sphere select", lambda: act.select_sphere(state, self.gizmo.position, self.radius.value, mode())))
        self.rect_button.on_click(self._arm_rect_select)
        self.click_button.on_click(self._arm_click_select)
        self.opacity_button.on_click(run("Opacity filter", lambda: act.select_opacity_below(state, self.opacity.value, mode())))
        self.scale_button.on_click(run("Scale filter", lambda: act.select_scale_above(state, self.scale_max.value, mode())))
        self.distance_button.on_click(run("Distance filter", lambda: act.select_far_from_center(state, self.distance.value, mode())))
        self.color_button.on_click(run("Color filter", lambda: act.select_color_near(
            state, np.asarray(self.color.value) / 255.0, self.color_tol.value, mode())))
        self.invert_button.on_click(run("Invert selection", state.invert_selection))
        self.clear_button.on_click(run("Clear selection", state.clear_selection))
        self.delete_button.on_click(run("Delete", state.delete_selected))
        self.crop_button.on_click(run("Keep only selection", state.crop_to_selection))
        self.simplify_button.on_click(lambda e: app.start_job(
            "Simplify", lambda job: act.simplify(state, self.simplify_target.value, job), e.client))
        self.floater_button.on_click(lambda e: app.start_job(
            "Remove floaters", lambda job: act.remove_floaters(state, int(self.floater_k.value), float(self.floater_std.value)), e.client))
        self.move_button.on_click(run("Move", self._apply_gizmo_move))
        self.scale_apply.on_click(run("Scale", lambda: act.scale(state, self.scale_factor.value)))
        self.tint_button.on_click(run("Tint", lambda: act.tint(state, np.asarray(self.tint_color.value) / 255.0, self.tint_strength.value)))
        self.bright_button.on_click(run("Brightness", lambda: act.brightness(state, self.bright.value)))
        self.sat_button.on_click(run("Saturation", lambda: act.saturation(state, self.sat.value)))
        self.undo_button.on_click(run("Undo", state.undo))
        self.redo_button.on_click(run("Redo", state.redo))

    def _show_gizmo(self, visible: bool) -> None:
        if visible and not self.gizmo.visible:
            framing = self.app.framing()  # the default volume sits on the framed scene's robust box
            center, radius = framing.center.numpy(), framing.radius
            self.gizmo.position = center
            self.gizmo.scale = max(radius * 0.3, 0.05)
            size = radius * 0.5
            self.box_size.value = (size, size, size)
            self.box.dimensions = (size, size, size)
            self.radius.value = size / 2  # the sphere fits the box
            self._anchor = (np.array(self.gizmo.wxyz), np.array(self.gizmo.position))
        self.gizmo.visible = visible
        self.box.visible = visible

    def _apply_gizmo_move(self) -> int:
        """Move the selection by the gizmo's motion since the last apply (rotation about the old gizmo centre)."""
        anchor_wxyz, anchor_pos = self._anchor
        wxyz, pos = np.array(self.gizmo.wxyz), np.array(self.gizmo.position)
        inverse = anchor_wxyz * np.array([1, -1, -1, -1])
        delta_rot = quat_multiply(torch.as_tensor(wxyz), torch.as_tensor(inverse)).numpy()
        changed = act.rigid_move(self.app.state, delta_rot, anchor_pos, pos - anchor_pos)
        self._anchor = (wxyz, pos)
        return changed

    # --------------------------------------------------- pointer selections
    def _arm_rect_select(self, event) -> None:
        scene = self.app.server.scene
        self.app.notify("Rectangle select", "Drag a rectangle on the scene.", event.client)

        @scene.on_rect_select()
        def on_rect(ev) -> None:
            scene.remove_rect_select_callback(on_rect)
            cam = ev.client.camera
            camera = Camera.from_viser(cam, height=cam.image_height, width=cam.image_width)
            (x0, y0), (x1, y1) = ev.screen_min, ev.screen_max
            rect = (x0 * camera.width, y0 * camera.height, x1 * camera.width, y1 * camera.height)
            self.app.action("Rectangle select", lambda: act.select_screen_rect(self.app.state, camera, rect, self.mode.value), ev.client)

    def _arm_click_select(self, event) -> None:
        scene = self.app.server.scene
        self.app.notify("Click select", "Click a splat on the scene.", event.client)

        @scene.on_click()
        def on_click(ev) -> None:
            scene.remove_click_callback(on_click)
            self.app.action("Click select", lambda: act.pick_on_ray(self.app.state, ev.ray_origin, ev.ray_direction, self.mode.value), ev.client)

    # ------------------------------------------------------------ mirror
    def refresh(self) -> None:
        entries = self.app.state.history_labels()
        if not entries:
            self.history.content = "_No edits yet._"
            return
        lines = [f"{i + 1}. {label}" if done else f"{i + 1}. ~~{label}~~ (undone)" for i, (label, done) in enumerate(entries[-12:])]
        self.history.content = "\n".join(lines)
