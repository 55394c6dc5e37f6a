"""Status line: splats shown / total, selected, frame, last action; and the running job's progress."""

from __future__ import annotations


class StatusPanel:
    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        self.text = gui.add_markdown("")
        self.job_text = gui.add_markdown("", visible=False)
        self.progress = gui.add_progress_bar(0.0, visible=False, animated=True)
        self.cancel = gui.add_button("Cancel job", visible=False, color="red")
        self.cancel.on_click(lambda e: app.cancel_jobs())

    def refresh(self) -> None:
        state = self.app.state
        with state.lock:
            counts = state.counts()
            frame, n = state.frame, state.num_frames
            last = state.last_action
            seq = next((layer for layer in state.layers.values() if layer.is_sequence), None)
            seconds = seq.times[seq.frame_index(frame)] if seq is not None else None
        parts = [f"**{counts['shown']:,}** / {counts['total']:,} splats shown", f"{counts['selected']:,} selected"]
        if n > 1:
            parts.append(f"frame {frame + 1}/{n}" + (f" (t = {seconds:.3g} s)" if seconds is not None else ""))
        if last:
            parts.append(f"last: {last[0]} ({last[1] * 1000:.0f} ms)")
        self.text.content = " · ".join(parts)

    def show_job(self, job) -> None:
        running = job.status == "running"
        self.job_text.content = f"{job.name}: {job.text or job.status}"
        self.job_text.visible = running
        self.progress.visible = running
        self.cancel.visible = running
        self.progress.value = job.fraction * 100
