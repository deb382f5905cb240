"""Forms of the Profile API Settings screen."""

from __future__ import annotations

from django import forms
from django.conf import settings

ENABLED = "enabled"
DISABLED = "disabled"


class RequireAuthenticationForm(forms.Form):
    require_authentication = forms.ChoiceField(
        label="Require Authentication",
        choices=((ENABLED, "Enabled"), (DISABLED, "Disabled")),
    )

    @classmethod
    def showing(cls, enabled: bool) -> RequireAuthenticationForm:
        return cls(initial={"require_authentication": ENABLED if enabled else DISABLED})

    @property
    def enabled(self) -> bool:
        return bool(self.cleaned_data["require_authentication"] == ENABLED)


def _expiry_choices() -> list[tuple[int, str]]:
    return [
        (days, "1 day" if days == 1 else f"{days} days")
        for days in settings.TOKEN_EXPIRY_CHOICES_DAYS
    ]


def _default_expiry() -> int:
    return int(settings.TOKEN_DEFAULT_EXPIRY_DAYS)


class TokenForm(forms.Form):
    expires_in_days = forms.TypedChoiceField(
        label="Expires In", coerce=int, choices=_expiry_choices, initial=_default_expiry
    )
