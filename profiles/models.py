"""The app's model registry: every model lives in the sub-package that owns it."""

from profiles.access.models import AuditEvent, Client, Membership, ProviderIdentity, Role
from profiles.ingest.batches import Batch, BatchFailure
from profiles.ingest.storage import BatchFileChunk
from profiles.store.models import Profile
from profiles.tokens.integrations import Integration
from profiles.tokens.models import ProfileApiSettings, ProfileToken, TokenReminder
from profiles.tokens.usage import TokenUsage

__all__ = [
    "AuditEvent",
    "Batch",
    "BatchFailure",
    "BatchFileChunk",
    "Client",
    "Integration",
    "Membership",
    "Profile",
    "ProfileApiSettings",
    "ProfileToken",
    "ProviderIdentity",
    "Role",
    "TokenReminder",
    "TokenUsage",
]
