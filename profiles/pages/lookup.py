"""Looking up one visitor profile for the Profiles page (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django import forms

from profiles.access.models import Client
from profiles.rules.limits import MAX_ID_LENGTH
from profiles.store import KeyKind
from profiles.store.keys import InvalidProfileId, check_profile_id
from profiles.store.models import Profile


class ProfileLookupForm(forms.Form):
    by = forms.ChoiceField(
        label="Look up by",
        choices=[(kind.value, kind.value) for kind in KeyKind],
        initial=KeyKind.PC_ID.value,
    )
    profile_id = forms.CharField(label="Id", max_length=MAX_ID_LENGTH)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if "by" in cleaned and "profile_id" in cleaned:
            try:
                check_profile_id(KeyKind(cleaned["by"]), str(cleaned["profile_id"]))
            except InvalidProfileId as error:
                self.add_error("profile_id", error.message)
        return cleaned

    @property
    def kind(self) -> KeyKind:
        return KeyKind(self.cleaned_data["by"])


@dataclass(frozen=True)
class AttributeRow:
    name: str
    value: str
    modified_at: datetime | str


def find_profile(client: Client, kind: KeyKind, profile_id: str) -> Profile | None:
    return Profile.objects.filter(client=client, **{kind.column: profile_id}).first()


def attribute_rows(profile: Profile) -> list[AttributeRow]:
    """The profile's attributes by name, each with when it was last modified."""
    rows = []
    for name, entry in sorted(profile.attributes.items()):
        stamp = str(entry.get("modifiedAt", ""))
        try:
            modified_at: datetime | str = datetime.fromisoformat(stamp)
        except ValueError:
            modified_at = stamp
        rows.append(AttributeRow(name, str(entry.get("value", "")), modified_at))
    return rows
