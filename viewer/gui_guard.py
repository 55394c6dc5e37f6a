"""Every GUI value a client sends is checked against its widget before the server takes it.

viser applies a client's ``GuiUpdateMessage`` to the widget as sent: a slider's
value beyond its max (render height 20000: an 8.5 GB render), a dropdown value
outside its options (a KeyError deep in a panel), any prop by name (a client
could rewrite a slider's ``max``), or a value of the wrong type (a cast error
in viser's event loop). :func:`guard_gui_updates` puts ONE check in front of
viser's handler for every widget of the server's GUI, so no panel has to
repeat it: only ``value`` may be sent; numbers must be finite and inside the
widget's ``min``/``max``; choices must be among its ``options``; texts are
strings of bounded length; checkboxes are booleans; vectors and colours have
the widget's length. A refused update never reaches the widget or a panel
callback; the client is told why (``on_refused(client_id, label, reason)``)
and its widget is set back to the server's value.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import viser
from viser import _messages

MAX_TEXT_CHARS = 4096  # a path or a name; a client sending megabytes of text is not typing


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _range_text(lo, hi) -> str:
    return f"{lo:g}..{hi:g}" if lo is not None and hi is not None else (f">= {lo:g}" if lo is not None else f"<= {hi:g}")


def check_value(props, current, value) -> str | None:
    """Why ``value`` does not fit a widget with these viser ``props`` now holding ``current`` (None: it fits)."""
    options = getattr(props, "options", None)
    if options is not None:
        return None if isinstance(value, str) and value in options else "not one of its options"
    if isinstance(current, bool):
        return None if isinstance(value, bool) else "not true or false"
    if isinstance(current, str):
        if not isinstance(value, str):
            return "not text"
        return None if len(value) <= MAX_TEXT_CHARS else f"longer than {MAX_TEXT_CHARS} characters"
    if isinstance(current, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(current) or not all(_number(v) for v in value):
            return f"not {len(current)} finite numbers"
        lows = getattr(props, "min", None)
        highs = getattr(props, "max", None)
        for i, v in enumerate(value):
            lo = lows[i] if isinstance(lows, (list, tuple)) else lows
            hi = highs[i] if isinstance(highs, (list, tuple)) else highs
            if isinstance(props, (_messages.GuiRgbProps, _messages.GuiRgbaProps)):
                lo, hi = 0, 255
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                return f"outside {_range_text(lo, hi)}"
        return None
    if isinstance(current, (int, float)):
        if not _number(value):
            return "not a finite number"
        lo, hi = getattr(props, "min", None), getattr(props, "max", None)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return f"{value:g} is outside {_range_text(lo, hi)}"
        return None
    return None  # a kind of widget without a value to bound


def guard_gui_updates(server: viser.ViserServer, on_refused: Callable[[int, str, str], None]) -> None:
    """Check every client GUI update of ``server.gui`` (see the module docstring); once per server."""
    gui = server.gui
    if getattr(gui, "_lyra_guarded", False):
        gui._lyra_on_refused = on_refused  # a new app on the same server (tests): report to it
        return
    gui._lyra_guarded, gui._lyra_on_refused = True, on_refused
    original = gui._handle_gui_updates
    infra = gui._websock_interface

    async def guarded(client_id, message: _messages.GuiUpdateMessage) -> None:
        handle = gui._gui_input_handle_from_uuid.get(message.uuid)
        if handle is None or handle._impl.removed:
            return
        props = handle._impl.props
        label = str(getattr(props, "label", "") or "a control")[:80]
        updates = message.updates if isinstance(message.updates, dict) else {}
        reason = None
        if set(updates) - {"value"} or not updates:
            reason = "only its value can be changed"
        elif not handle._impl.is_button:
            reason = check_value(props, handle._impl.value, updates["value"])
        if reason is None:
            await original(client_id, message)
            return
        gui._lyra_on_refused(client_id, label, reason)
        client = server._connected_clients.get(client_id)
        if client is not None and not handle._impl.is_button:  # put the client's widget back to the server's value
            client._websock_connection.queue_message(
                _messages.GuiUpdateMessage(message.uuid, {"value": handle._impl.value}))

    infra.unregister_handler(_messages.GuiUpdateMessage, original)
    infra.register_handler(_messages.GuiUpdateMessage, guarded)
