"""Reading a request body as JSON: the one parse every JSON front door uses.

``json.loads`` refuses a hostile body with more than ``JSONDecodeError``: bytes that are not
UTF-8 raise ``UnicodeDecodeError``, deep nesting ``RecursionError``, and an integer with more
digits than Python converts (``sys.get_int_max_str_digits()``, 4,300 by default) a bare
``ValueError``. :func:`loads` answers each with a ``ProductError`` that says which, so no
body ends in a 500. A string it returns may still hold a lone surrogate (``"\\ud800"``);
the ingest pipeline's checks refuse those (``profiles.store.keys.is_storable``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from profiles.rules.errors import ErrorCode, ProductError

NESTED_TOO_DEEPLY = "The body is nested too deeply."


def number_too_long() -> str:
    return f"The body holds a number of more than {sys.get_int_max_str_digits():,} digits."


def loads(body: bytes, code: ErrorCode, not_json: str) -> Any:
    """``body`` parsed as JSON, or ``ProductError(code, …)`` saying why it cannot be.

    ``not_json`` is the caller's message for a body that is not JSON (or not UTF-8); it may
    name the parser's reason as ``{reason}``.
    """
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProductError(code, not_json.format(reason=error)) from None
    except RecursionError:
        raise ProductError(code, NESTED_TOO_DEEPLY) from None
    except ValueError:  # the only other refusal: an integer past Python's digit limit
        raise ProductError(code, number_too_long()) from None
