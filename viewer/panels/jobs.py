"""Jobs panel: one status row per running background job (name, text, progress, its own Cancel button).

A row appears when a job starts and disappears when it ends (its outcome is a
notification). Cancel stops that job only: the job's next progress call raises
:class:`lyra.progress.Cancelled`.
"""

from __future__ import annotations

import dataclasses
import threading

from viewer.jobs import Job


@dataclasses.dataclass
class JobRow:
    text: object
    bar: object
    cancel: object

    def remove(self) -> None:
        for handle in (self.text, self.bar, self.cancel):
            handle.remove()


class JobsPanel:
    key = "jobs"

    def __init__(self, app):
        self.app = app
        self.folder = app.server.gui.add_folder("Jobs", visible=False)
        self.rows: dict[Job, JobRow] = {}
        self._lock = threading.Lock()  # jobs report from their own threads

    def show(self, job: Job) -> None:
        """Mirror ``job`` in its row (created on the first report, removed once the job ended)."""
        with self._lock:
            row = self.rows.get(job)
            if not job.running:
                if row is not None:
                    self.rows.pop(job).remove()
                self.folder.visible = bool(self.rows)
                return
            if row is None:
                gui = self.app.server.gui
                with self.folder:
                    row = JobRow(gui.add_markdown(""), gui.add_progress_bar(0.0, animated=True),
                                 gui.add_button(f"Cancel {job.name}", color="red"))
                row.cancel.on_click(lambda _: job.cancel())
                self.rows[job] = row
                self.folder.visible = True
            row.text.content = f"**{job.name}**: {job.text or job.status}"
            row.bar.value = job.fraction * 100

    def refresh(self) -> None:
        pass  # rows follow their jobs through show()
