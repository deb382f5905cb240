"""Forms of the Profile API Settings screen."""

from __future__ import annotations

from django import forms

from profiles.tokens import expiry

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
    return [(days, expiry.label(days)) for days in expiry.choices()]


class TokenForm(forms.Form):
    expires_in_days = forms.TypedChoiceField(
        label="Expires In", coerce=int, choices=_expiry_choices, initial=expiry.default_days
    )
