"""One module per GUI panel, registered in :data:`viewer.app.PANELS`.

A panel class has a ``key`` (its name in ``app.panels``), builds its widgets in
``__init__(app)`` and mirrors the state in ``refresh()``; optionally
``attach_client(client)`` (a browser connected) and ``stop()`` (shutdown).
Panels use :class:`viewer.state.AppState`'s methods and the app's
``action`` / ``start_job`` / ``notify``, never another panel's widgets.
"""
