"""Time panel: frame slider, play/pause, fps, loop, step (for 4D sequences).

A frame that cannot be shown (a lazily read frame whose file went bad) never
ends playback: it is reported once and skipped, and the frame shown before
stays. From the slider or the step buttons, the failure is a notification.
"""

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
        self._reported: set[tuple[int, str]] = set()  # (frame, error) already told to the user
        self.slider.on_update(self._on_slider)
        self.back.on_click(lambda e: self.app.action("Step back", lambda: self.step(-1), e.client))
        self.forward.on_click(lambda e: self.app.action("Step forward", lambda: self.step(1), e.client))
        self._stop = threading.Event()
        self._player = threading.Thread(target=self._play_loop, name="viewer-playback", daemon=True)
        self._player.start()

    def _on_slider(self, event) -> None:
        if self._refreshing or event.client is None:  # server-side mirror updates are not user input
            return
        index = int(self.slider.value)
        self.app.action(f"Show frame {index}", lambda: self.show_frame(index), event.client)

    def show_frame(self, index: int) -> int:
        """Show frame ``index``; if it cannot be shown, the frame shown before stays and the error is raised."""
        previous = self.app.state.time_info().frame
        shown = self.app.state.set_frame(index)
        try:
            self.app.refresh()
        except Exception:
            self.app.state.set_frame(previous)
            try:
                self.app.refresh()
            except Exception:  # the previous frame fails too; the original error is the one to report
                pass
            raise
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
                self._keep_playing(self.app.refresh, time_now.frame)
            if not self.play.value or time_now.num_frames <= 1:
                self._stop.wait(0.05)
                next_tick = time.perf_counter()
                continue
            if not self.loop.value and time_now.frame >= time_now.num_frames - 1:
                self.play.value = False
                continue
            self._keep_playing(self._play_step, time_now.frame)
            next_tick += 1.0 / max(1, self.fps.value)
            self._stop.wait(max(0.0, next_tick - time.perf_counter()))
            next_tick = max(next_tick, time.perf_counter() - 0.5)  # do not race to catch up after a stall

    def _play_step(self) -> None:
        """Show the next frame that can be shown: a bad one is reported (once) and skipped, playback goes on."""
        time_now = self.app.state.time_info()
        index = time_now.frame
        for _ in range(time_now.num_frames - 1):
            index += 1
            if index >= time_now.num_frames:
                if not self.loop.value:
                    self.play.value = False  # the end of the clip (what is left of it cannot be shown)
                    return
                index = 0
            if self._keep_playing(lambda i=index: self.show_frame(i), index):
                break
        self._keep_playing(self.app.state.prefetch, index)  # read the next frames of a lazy clip while this one shows

    def _keep_playing(self, fn, frame: int) -> bool:
        """Run ``fn()``; an error is reported once per frame and message, never ends the player. True if it ran."""
        try:
            fn()
            return True
        except Exception as exc:
            key = (frame, f"{type(exc).__name__}: {exc}")
            if key not in self._reported:
                self._reported.add(key)
                self.app.notify(f"Frame {frame} skipped", f"it could not be shown ({key[1]})", error=True)
            return False

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
