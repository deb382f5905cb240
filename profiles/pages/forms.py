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


# The regenerate form's id: the grace choice sits in the confirmation dialog, outside the
# <form> element, and joins it through its ``form`` attribute.
REGENERATE_FORM_ID = "regenerate-form"


class TokenForm(forms.Form):
    expires_in_days = forms.TypedChoiceField(
        label="Expires In", coerce=int, choices=_expiry_choices, initial=expiry.default_days
    )
    # Only re-generating reads it; "Immediately" (Adobe's behaviour) when not sent.
    previous_token_grace = forms.TypedChoiceField(
        label="Current token stops working",
        coerce=int,
        choices=expiry.GRACE_CHOICES_SECONDS,
        initial=0,
        required=False,
        empty_value=None,
        widget=forms.Select(attrs={"form": REGENERATE_FORM_ID}),
    )


class RevokePreviousForm(forms.Form):
    """Revoke now: names the previous token the page showed, so a stale page cannot end
    another one."""

    previous_token = forms.IntegerField(widget=forms.HiddenInput)
