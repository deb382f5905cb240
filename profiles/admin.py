"""The operators' Django admin: clients and their settings, roles, and read-only records.

Tokens show metadata only: the admin has no field that could hold or reveal a secret (not
the digest, not the encrypted copy of a retrievable token) and no filter on one, and tokens
are created on the settings screen, the management API or the command line.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

from profiles.access.actors import Actor
from profiles.access.addresses import caller_address
from profiles.models import (
    AuditEvent,
    Batch,
    Client,
    Integration,
    Membership,
    ProfileApiSettings,
    ProfileToken,
    TokenReminder,
)


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Records that only the product writes: operators may look, never edit."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        """No list filters on a field the admin never shows (``exclude``): answered, the count
        of matching rows (``digest__startswith=…``) would tell its value a character at a
        time. Django answers a refused lookup 400."""
        if lookup.split(LOOKUP_SEP, 1)[0] in (self.exclude or ()):
            return False
        return bool(super().lookup_allowed(lookup, value, request))


class ProfileApiSettingsInline(admin.StackedInline[ProfileApiSettings, Client]):
    """Shown, not edited here: changes go through the screen or the API so they are audited."""

    model = ProfileApiSettings
    fields = (
        "require_authentication",
        "allowed_networks",
        "token_retrievable",
        "changed_by",
        "changed_at",
    )
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline[Membership, Client]):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin[Client]):
    list_display = ("code", "name", "created_at")
    search_fields = ("code", "name")
    inlines = (ProfileApiSettingsInline, MembershipInline)

    def get_readonly_fields(self, request: HttpRequest, obj: Client | None = None) -> Any:
        # Client codes appear in every URL and script, so they are fixed once created.
        return ("code", "created_at") if obj is not None else ("created_at",)

    def save_model(self, request: HttpRequest, obj: Client, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            AuditEvent.record(obj, AuditEvent.Action.CLIENT_CREATED, actor=_actor(request))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        memberships = formset.save()
        if formset.model is Membership:
            actor = _actor(request)
            for membership in memberships:
                _record_role(actor, membership)


def _actor(request: HttpRequest) -> Actor:
    """Who acts in the admin: the signed-in operator, from the caller's address."""
    return Actor.person(request.user, caller_address(request))


def _record_role(actor: Actor, membership: Membership) -> None:
    AuditEvent.record(
        membership.client,
        AuditEvent.Action.ROLE_GRANTED,
        actor=actor,
        detail=f"{membership.user.get_username()} is {membership.get_role_display()}",
    )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ("user", "client", "role")
    list_filter = ("role", "client")
    search_fields = ("user__username", "client__code")
    autocomplete_fields = ("user", "client")

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change or "role" in form.changed_data:
            _record_role(_actor(request), obj)


@admin.register(ProfileToken)
class ProfileTokenAdmin(ReadOnlyAdmin):
    list_display = (
        "client",
        "integration",
        "masked",
        "created_by",
        "created_at",
        "expires_at",
        "grace_until",
        "revoked_at",
        "last_used_at",
        "kept_for_retrieval",
    )
    list_filter = ("client",)
    fields = (*list_display, "last_used_from")
    readonly_fields = fields
    # Neither secret's stand-in is ever shown: not the digest, not the encrypted copy.
    exclude = ("digest", "ciphertext")

    @admin.display(boolean=True, description="Retrievable")
    def kept_for_retrieval(self, token: ProfileToken) -> bool:
        return token.retrievable


@admin.register(Integration)
class IntegrationAdmin(ReadOnlyAdmin):
    """A client's integration tokens (docs/tokens.md#integration-tokens): their tokens are
    listed with the profile tokens, masked."""

    list_display = ("client", "name", "permission_list", "created_by", "created_at", "revoked_at")
    list_filter = ("client",)
    fields = list_display
    readonly_fields = fields

    @admin.display(description="Permissions")
    def permission_list(self, integration: Integration) -> str:
        return ", ".join(integration.permission_names)


@admin.register(TokenReminder)
class TokenReminderAdmin(ReadOnlyAdmin):
    list_display = ("token", "kind", "sent_at", "recipients")
    list_filter = ("kind",)
    fields = list_display
    readonly_fields = fields


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "client",
        "actor_label",
        "action",
        "token_last_four",
        "remote_addr",
    )
    list_filter = ("action", "client")
    search_fields = ("actor_label", "client__code")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "client",
        "actor",
        "actor_label",
        "action",
        "remote_addr",
        "token_last_four",
        "detail",
    )
    readonly_fields = fields


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "client",
        "api_version",
        "status",
        "batch_size",
        "consumed_count",
        "failed_updates",
        "created_at",
    )
    list_filter = ("status", "api_version", "client")
    search_fields = ("id", "idempotency_key")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "client",
        "api_version",
        "key_kind",
        "create_missing",
        "status",
        "batch_size",
        "consumed_count",
        "successful_updates",
        "profiles_not_found",
        "failed_updates",
        "idempotency_key",
        "attempts",
        "chunks_done",
        "created_at",
        "updated_at",
        "finished_at",
    )
    readonly_fields = fields
