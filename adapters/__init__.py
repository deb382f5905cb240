"""Framework adaptations: where targetadmin changes how Django and gunicorn behave.

The database backends (``sqlite/``: one queue for writers; ``postgresql/``: a health check
only after idle time), the gunicorn worker that waits for slow clients in its event loop
(``gunicorn_worker.py``) and gunicorn's logger (``gunicorn_logging.py``), and Django's request
handler with a middleware list of its own (``lean_handler.py``). They know nothing of the
project or the app: ``make lint`` forbids this package to import ``targetadmin`` or
``profiles`` (docs/development.md#layers).
"""
