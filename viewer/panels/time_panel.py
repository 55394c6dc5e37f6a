"""Time panel: frame slider, play/pause, fps, loop, step (for 4D sequences)."""

from __future__ import annotations

import threading
import time

import viser


class TimePanel:
    key = "time"

    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        self.folder = gui.add_folder("Time")
        with self.folder:
            self.slider = gui.add_slider("Frame", min=0, max=1, step=1, initial_value=0, disabled=True)
            self.play = gui.add_checkbox("Play", False)
            self.loop = gui.add_checkbox("Loop", True)
            self.fps = gui.add_slider("FPS", min=1, max=60, step=1, initial_value=24)
            with gui.add_folder("Step", expand_by_default=True):
                self.back = gui.add_button("Step back", icon=viser.Icon.PLAYER_TRACK_PREV)
                self.forward = gui.add_button("Step forward", icon=viser.Icon.PLAYER_TRACK_NEXT)
        self._refreshing = False
        self.slider.on_update(self._on_slider)
        self.back.on_click(lambda e: self.step(-1))
        self.forward.on_click(lambda e: self.step(1))
        self._stop = threading.Event()
        self._player = threading.Thread(target=self._play_loop, name="viewer-playback", daemon=True)
        self._player.start()

    def _on_slider(self, event) -> None:
        if self._refreshing or event.client is None:  # server-side mirror updates are not user input
            return
        self.show_frame(int(self.slider.value))

    def show_frame(self, index: int) -> int:
        shown = self.app.state.set_frame(index)
        self.app.refresh()
        return shown

    def step(self, delta: int) -> int:
        time_now = self.app.state.time_info()
        index = time_now.frame + delta
        index = index % time_now.num_frames if self.loop.value else index
        return self.show_frame(index)

    def _play_loop(self) -> None:
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            time_now = self.app.state.time_info()
            playing = bool(self.play.value) and time_now.num_frames > 1
            if self.app.state.set_playing(playing) and not playing:  # the splat budget differs while playing
                self.app.refresh()
            if not self.play.value or time_now.num_frames <= 1:
                self._stop.wait(0.05)
                next_tick = time.perf_counter()
                continue
            if not self.loop.value and time_now.frame >= time_now.num_frames - 1:
                self.play.value = False
                continue
            try:
                self.step(1)
                self.app.state.prefetch()  # read the next frames of a lazy clip while this one shows
            except Exception as exc:  # keep the player alive; report once
                self.play.value = False
                self.app.notify("Playback stopped", str(exc), error=True)
            next_tick += 1.0 / max(1, self.fps.value)
            self._stop.wait(max(0.0, next_tick - time.perf_counter()))
            next_tick = max(next_tick, time.perf_counter() - 0.5)  # do not race to catch up after a stall

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> None:
        time_now = self.app.state.time_info()
        n, frame, fps = time_now.num_frames, time_now.frame, time_now.fps
        self._refreshing = True
        try:
            if self.slider.max != max(1, n - 1):
                self.slider.max = max(1, n - 1)
            self.slider.disabled = n <= 1
            if self.slider.value != frame:
                self.slider.value = frame
            if fps is not None and getattr(self, "_fps_from", None) != fps:
                self._fps_from = fps
                self.fps.value = int(min(60, max(1, round(fps))))
        finally:
            self._refreshing = False
