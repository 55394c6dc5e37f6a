"""One module per GUI panel; each builds its widgets in ``__init__(app)`` and mirrors state in ``refresh()``."""
