"""The SQLite database backend, with one queue for writers (``base.py``)."""
