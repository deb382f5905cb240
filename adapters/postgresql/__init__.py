"""The PostgreSQL database backend, with a health check only after idle time (``base.py``)."""
