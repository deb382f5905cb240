"""gunicorn's logger, without the access line nobody reads (``gunicorn.conf.py`` names it)."""

from __future__ import annotations

from gunicorn import glogging


class Logger(glogging.Logger):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's logger, building no access line while the access log is off.

    gunicorn builds every request's access line (a dozen fields, dates formatted twice)
    whenever ``logconfig_dict`` is set, and hands it to a logger without handlers: a tenth of
    the CPU a minimal request costs, for nothing.
    """

    def _compute_access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog) and bool(super()._compute_access_log_enabled())
