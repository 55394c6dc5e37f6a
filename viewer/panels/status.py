"""Status line: splats the browser has of those live (and the budget that cut them), selected (this frame and all frames), frame, hidden layers, last action."""

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
    sending = state.send_status()
    if sending.sent < sending.live:  # one number of splats: what the browser has, and why it is not all
        parts = [f"**{sending.sent:,}** of {sending.live:,} splats shown "
                 f"({sending.reason} {sending.budget:,}; Scene tab > View)"]
    else:
        parts = [f"**{sending.live:,}** splats shown"]
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
