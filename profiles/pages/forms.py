"""Forms of the Profile API Settings screen."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from profiles.tokens import expiry, permissions
from profiles.tokens.integrations import MAX_NAME_LENGTH, clean_name
from profiles.tokens.models import MAX_ALLOWED_NETWORKS, clean_networks, clean_token_retrievable

PERMISSION_CHOICES = (
    ("fetch", "fetch: read profiles"),
    ("update", "update: single profile updates"),
    ("batch", "batch: batch files, JSON bulk and batch status"),
)
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


class AllowedNetworksForm(forms.Form):
    """The profile APIs' allowed networks, one CIDR per line (docs/api.md#allowed-networks)."""

    allowed_networks = forms.CharField(
        label="Allowed networks",
        required=False,
        max_length=MAX_ALLOWED_NETWORKS * 80,
        help_text=(
            "One network per line in CIDR notation, IPv4 or IPv6 (e.g. 192.0.2.0/24); "
            "profile API calls from anywhere else are refused. Empty: any address."
        ),
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
    )

    @classmethod
    def showing(cls, networks: list[str]) -> AllowedNetworksForm:
        return cls(initial={"allowed_networks": "\n".join(networks)})

    def clean_allowed_networks(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["allowed_networks"].splitlines()]
        try:
            return clean_networks(line for line in lines if line)
        except ValidationError as error:
            raise ValidationError(error.messages) from None


class TokenRetrievableForm(forms.Form):
    """Allow the token to be retrieved again (docs/tokens.md#retrievable-tokens)."""

    token_retrievable = forms.BooleanField(
        label="Allow the token to be retrieved again",
        required=False,
        help_text=(
            "Trades safety for compatibility: each new token is then also kept encrypted, so "
            "Approvers can reveal it and scripts can fetch it from GET "
            "…/authentication/token, as Adobe's clients do. Leave it off unless a script "
            "needs it; turning it off erases every kept copy."
        ),
    )

    def clean_token_retrievable(self) -> bool:
        return clean_token_retrievable(bool(self.cleaned_data["token_retrievable"]))


def _expiry_choices() -> list[tuple[int, str]]:
    return [(days, expiry.label(days)) for days in expiry.choices()]


# The regenerate form's id: the grace choice sits in the confirmation dialog, outside the
# <form> element, and joins it through its ``form`` attribute.
REGENERATE_FORM_ID = "regenerate-form"


class ExpiresInForm(forms.Form):
    """A token's lifetime, from the Expires In choices."""

    expires_in_days = forms.TypedChoiceField(
        label="Expires In", coerce=int, choices=_expiry_choices, initial=expiry.default_days
    )


class TokenForm(ExpiresInForm):
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


class IntegrationAddForm(ExpiresInForm):
    """Add an integration token (docs/tokens.md#integration-tokens)."""

    name = forms.CharField(
        label="Name",
        max_length=MAX_NAME_LENGTH,
        help_text="What calls with it, e.g. CRM sync or web tier.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    permissions = forms.MultipleChoiceField(
        label="Permissions",
        choices=PERMISSION_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one permission."},
    )

    def clean_name(self) -> str:
        return clean_name(self.cleaned_data["name"])

    def clean_permissions(self) -> int:
        return int(permissions.parse(self.cleaned_data["permissions"]))


class IntegrationForm(forms.Form):
    """Names the integration token a page showed, for Re-generate and Revoke."""

    integration = forms.IntegerField(widget=forms.HiddenInput)


class IntegrationRegenerateForm(IntegrationForm, TokenForm):
    """Re-generate an integration token, with the client token's expiry and grace choices."""
