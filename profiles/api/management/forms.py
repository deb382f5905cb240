"""The management API's input, validated with ordinary Django forms.

Errors become one ``ProductError`` (``INVALID``, Adobe's ``Parameter.Invalid``) naming each field's problem.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens import expiry, permissions, usage
from profiles.tokens.integrations import clean_name
from profiles.tokens.models import MAX_ALLOWED_NETWORKS, clean_networks, clean_token_retrievable

PROFILE_API_SCOPE = "profile_api"


def _expiry_choices() -> list[tuple[int, str]]:
    return [(days, str(days)) for days in expiry.choices()]


def _expiry_message() -> str:
    return f"must be one of {expiry.choices_text()} (days)."


class ApiForm(forms.Form):
    def validated(self) -> dict[str, Any]:
        if not self.is_valid():
            problems = [
                f"{field}: {message}" if field != NON_FIELD_ERRORS else str(message)
                for field, messages in self.errors.items()
                for message in messages
            ]
            raise ProductError(ErrorCode.INVALID, " ".join(problems))
        return self.cleaned_data


GRACE_MESSAGE = f"must be a whole number of seconds from 0 to {expiry.MAX_GRACE_SECONDS}."


def _grace_errors() -> dict[str, str]:
    return dict.fromkeys(("invalid", "min_value", "max_value"), GRACE_MESSAGE)


class TokenRequestForm(ApiForm):
    """The query of ``POST …/target/authentication/token``."""

    authorizationScope = forms.CharField(required=False)  # Adobe's name
    scope = forms.CharField(required=False)
    expiresInDays = forms.TypedChoiceField(  # Adobe's name
        choices=_expiry_choices,
        coerce=int,
        required=False,
        empty_value=None,
        error_messages={"invalid_choice": _expiry_message()},
    )
    previousTokenGraceSeconds = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=expiry.MAX_GRACE_SECONDS,
        error_messages=_grace_errors(),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        given = {cleaned.get("authorizationScope"), cleaned.get("scope")} - {"", None}
        if not given:
            raise forms.ValidationError(f"authorizationScope={PROFILE_API_SCOPE} is required.")
        if given != {PROFILE_API_SCOPE}:
            raise forms.ValidationError(
                f"The only scope a token can have is {PROFILE_API_SCOPE!r}, "
                f"not {', '.join(sorted(repr(scope) for scope in given - {PROFILE_API_SCOPE}))}."
            )
        if cleaned.get("expiresInDays") is None:
            cleaned["expiresInDays"] = expiry.default_days()
        return cleaned


class JsonBooleanField(forms.Field):
    """A JSON ``true`` or ``false``; strings and numbers are refused, not guessed at."""

    default_error_messages = {"invalid": "must be true or false."}

    def to_python(self, value: Any) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class JsonIntegerField(forms.IntegerField):
    """A JSON integer; strings, fractions and booleans are refused, not guessed at."""

    def to_python(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return value


class JsonBodyForm(ApiForm):
    """A JSON object's fields: one the form does not know is refused, not ignored."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        unknown = sorted(set(self.data) - set(self.fields))
        if unknown:
            raise forms.ValidationError(f"Unknown field(s): {', '.join(unknown)}.")
        return cleaned


def _grace_field() -> JsonIntegerField:
    return JsonIntegerField(
        required=False,
        min_value=0,
        max_value=expiry.MAX_GRACE_SECONDS,
        error_messages=_grace_errors(),
    )


class TokenRequestBodyForm(JsonBodyForm):
    """The optional JSON body of ``POST …/target/authentication/token``."""

    previousTokenGraceSeconds = _grace_field()


class JsonExpiryField(JsonIntegerField):
    """A JSON integer among the expiry choices (days); absent: the default."""

    def to_python(self, value: Any) -> int | None:
        return expiry.default_days() if value is None else super().to_python(value)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is not None and value not in expiry.choices():
            raise forms.ValidationError(_expiry_message(), code="invalid_choice")


class JsonNameField(forms.Field):
    """An integration token's name (docs/tokens.md#integration-tokens)."""

    def to_python(self, value: Any) -> str | None:
        return None if value is None else clean_name(value)


class JsonPermissionsField(forms.Field):
    """A JSON list of permission names (docs/tokens.md#permissions), as their bitmask."""

    default_error_messages = {
        "invalid": f"must be a list of one or more of {permissions.NAMES_TEXT}."
    }

    def to_python(self, value: Any) -> int | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return int(permissions.parse(value))
        except ValueError as refused:
            raise forms.ValidationError(str(refused), code="invalid") from None


class IntegrationAddForm(JsonBodyForm):
    """The JSON body of ``POST …/target/authentication/tokens``."""

    name = JsonNameField()
    permissions = JsonPermissionsField()
    expiresInDays = JsonExpiryField(required=False)


class JsonPatchForm(JsonBodyForm):
    """A PATCH's JSON object: any of the form's fields, at least one."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.errors and all(cleaned.get(name) is None for name in self.fields):
            raise forms.ValidationError(f"Send at least one of {', '.join(self.fields)}.")
        return cleaned


class IntegrationPatchForm(JsonPatchForm):
    """The JSON body of ``PATCH …/target/authentication/tokens/<id>``."""

    name = JsonNameField(required=False)
    permissions = JsonPermissionsField(required=False)


class IntegrationRegenerateForm(JsonBodyForm):
    """The optional JSON body of ``POST …/target/authentication/tokens/<id>/regenerate``."""

    expiresInDays = JsonExpiryField(required=False)
    previousTokenGraceSeconds = _grace_field()


class JsonNetworkListField(forms.Field):
    """A JSON list of networks in CIDR notation (docs/api.md#allowed-networks), normalised;
    ``[]`` means any address."""

    default_error_messages = {
        "invalid": f"must be a list of at most {MAX_ALLOWED_NETWORKS} networks in CIDR notation."
    }

    def to_python(self, value: Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return clean_networks(value)


class SettingsPatchForm(JsonPatchForm):
    """The JSON body of ``PATCH …/target/clients/settings``: any of its fields."""

    enableProfileApiAuthentication = JsonBooleanField(required=False)  # Adobe's name
    profileApiAllowedNetworks = JsonNetworkListField(required=False)
    profileTokenRetrievable = JsonBooleanField(required=False)

    def clean_profileTokenRetrievable(self) -> bool | None:
        wanted: bool | None = self.cleaned_data["profileTokenRetrievable"]
        return None if wanted is None else clean_token_retrievable(wanted)


class UsageQueryForm(ApiForm):
    """The query of ``GET …/authentication/token/usage`` and ``…/tokens/<id>/usage``."""

    days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=usage.KEPT_DAYS,
        error_messages=dict.fromkeys(
            ("invalid", "min_value", "max_value"),
            f"must be a whole number of days from 1 to {usage.KEPT_DAYS}.",
        ),
    )

    def clean_days(self) -> int:
        days: int | None = self.cleaned_data["days"]
        return usage.DEFAULT_DAYS if days is None else days
