"""What a process reads from its environment: shared by settings.py and gunicorn.conf.py.

gunicorn reads ``gunicorn.conf.py`` before any Django setting is loaded, so what both need
lives here, importing nothing of the project: the readers, which refuse a value they do not
understand instead of guessing, so that a typo stops the process at start-up with a message
naming the variable (docs/operations.md#configuration); the directory of local state; and
the one logging configuration, JSON lines on stderr (profiles/edge/request_log.py).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    _check_range(name, value, minimum, maximum)
    return value


def env_float(
    name: str, default: float, *, minimum: float = 0, maximum: float | None = None
) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    _check_range(name, value, minimum, maximum)
    return value


def _check_range(name: str, value: float, minimum: float, maximum: float | None) -> None:
    # ``not`` so that NaN, which compares false with everything, is out of range too.
    if not (minimum <= value and (maximum is None or value <= maximum)):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ImproperlyConfigured(f"{name} must be {bounds}, not {value}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_networks(name: str) -> tuple[str, ...]:
    """A comma-separated list of IPv4/IPv6 networks (CIDR), each checked at start-up."""
    networks = []
    for item in env_list(name, ""):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(f"{name} must list networks (CIDR), not {item!r}") from None
    return tuple(networks)


def var_dir() -> Path:
    """Where local state lives (``TARGETADMIN_VAR_DIR``): the SQLite file, the keys, the
    default batch directory, gunicorn's control socket."""
    return Path(env_str("TARGETADMIN_VAR_DIR", str(BASE_DIR / "var")))


def json_logging(loggers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The logging configuration (``logging.config.dictConfig``) of every process, with
    ``loggers`` configured besides the root: one JSON object per line on stderr
    (profiles/edge/request_log.py), at ``LOG_LEVEL``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "profiles.edge.request_log.JsonFormatter"}},
        # A refused request (4xx) is one short line without a traceback, whoever logs it.
        "filters": {"concise_refusals": {"()": "profiles.edge.request_log.ConciseRefusals"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["concise_refusals"],
            }
        },
        "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
        "loggers": loggers,
    }
