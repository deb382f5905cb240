"""Reading a request body as JSON: the one parse every JSON front door uses.

``json.loads`` refuses a hostile body with more than ``JSONDecodeError``: bytes that are not
UTF-8 raise ``UnicodeDecodeError``, deep nesting ``RecursionError``, and an integer with more
digits than Python converts (``sys.get_int_max_str_digits()``, 4,300 by default) a bare
``ValueError``. :func:`loads` answers each with a ``ProductError`` that says which, so no
body ends in a 500. A string it returns may still hold a lone surrogate (``"\\ud800"``);
the ingest pipeline's checks refuse those (``profiles.store.keys.is_storable``).
``NaN``, ``Infinity`` and ``-Infinity``, which Python reads but JSON does not have, are
refused too.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from profiles.rules.errors import ErrorCode, ProductError

NESTED_TOO_DEEPLY = "The body is nested too deeply."


def number_too_long() -> str:
    return f"The body holds a number of more than {sys.get_int_max_str_digits():,} digits."


def loads(body: bytes, code: ErrorCode, not_json: str, *, numbers_as_text: bool = False) -> Any:
    """``body`` parsed as JSON, or ``ProductError(code, …)`` saying why it cannot be.

    ``not_json`` is the caller's message for a body that is not JSON (or not UTF-8); it may
    name the parser's reason as ``{reason}``. With ``numbers_as_text`` every number is the
    text it was written as (``1e2``, ``0.10``, 30 digits), for a front door that stores
    values as text: a float would round it, and ``int`` refuse one of thousands of digits.
    """

    def refuse(constant: str) -> NoReturn:
        raise ProductError(code, f"The body holds {constant}, which is not a JSON number.")

    options: dict[str, Any] = {"parse_constant": refuse}
    if numbers_as_text:
        options |= {"parse_float": str, "parse_int": str}
    try:
        return json.loads(body, **options)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProductError(code, not_json.format(reason=error)) from None
    except RecursionError:
        raise ProductError(code, NESTED_TOO_DEEPLY) from None
    except ValueError:  # the only other refusal: an integer past Python's digit limit
        raise ProductError(code, number_too_long()) from None
