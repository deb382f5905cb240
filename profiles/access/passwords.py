"""Local passwords (docs/operations.md#switching-passwords-off).

With ``PASSWORD_SIGN_IN`` off, only a superuser's password still opens anything: the
break-glass account an operator creates with ``manage.py createsuperuser`` for the Django
admin when the identity provider cannot be used. Each such sign-in writes an audit line.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User

from profiles.access import sign_in_log
from profiles.access.addresses import caller_address


class PasswordBackend(ModelBackend):
    def authenticate(
        self,
        request: Any,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        user = super().authenticate(request, username, password, **kwargs)
        if user is None or settings.PASSWORD_SIGN_IN:
            return user
        if not getattr(user, "is_superuser", False):
            return None
        sign_in_log.break_glass(user.get_username(), caller_address(request) if request else None)
        return user
