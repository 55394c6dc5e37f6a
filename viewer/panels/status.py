"""Status line: splats shown / total, selected (this frame and all frames), frame, hidden layers, last action."""

from __future__ import annotations


class StatusPanel:
    key = "status"

    def __init__(self, app):
        self.app = app
        self.text = app.server.gui.add_markdown("")

    def refresh(self) -> None:
        self.text.content = status_line(self.app.state)


def status_line(state) -> str:
    """The status text of ``state`` (a function of the state only, so it is easy to test)."""
    counts, time, hidden = state.counts(), state.time_info(), state.hidden_layers()
    last = state.last_action
    parts = [f"**{counts['shown']:,}** / {counts['total']:,} splats shown"]
    budget = state.budget_status()
    if budget is not None:
        parts.append(f"showing {budget[0]:,} of {budget[1]:,} (splat budget; Scene tab > View)")
    if time.num_frames > 1:
        parts.append(f"{counts['selected']:,} selected in this frame, {counts['selected_all']:,} in all frames")
        parts.append(f"frame {time.frame + 1}/{time.num_frames}" + (f" (t = {time.seconds:.3g} s)" if time.seconds is not None else ""))
    else:
        parts.append(f"{counts['selected']:,} selected")
    if hidden:
        parts.append(f"hidden: {', '.join(hidden)} (Scene tab > Layers > Visible)")
    if last:
        parts.append(f"last: {last[0]} ({last[1] * 1000:.0f} ms)")
    return " · ".join(parts)
