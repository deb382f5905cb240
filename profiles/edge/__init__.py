"""What every request passes through, whichever view serves it: its id and its log line
(``request_log.py``)."""
