from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Target profiles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from adapters import local_state
        from adapters.sqlite import writers
        from profiles.access.checks import issuer_over_https
        from profiles.rules import metrics
        from profiles.tokens.checks import token_encryption_keys

        checks.register(token_encryption_keys, checks.Tags.database)
        checks.register(local_state.check)
        checks.register(issuer_over_https, checks.Tags.security, deploy=True)
        if metrics.recording:
            # How long SQLite's writers queue (docs/operations.md#metrics).
            writers.wait_observer = metrics.observe_writer_wait
