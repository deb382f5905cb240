"""The profile's own client_id index goes: the unique (client, key) indexes lead with the
client and serve every read by client (docs/performance.md#indexes).

The index is dropped by name rather than by Django's AlterField, which on SQLite rebuilds
the whole profiles table to drop one index."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "profiles_profile_client_id_86bcf235"


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0008_batch_file_chunks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="profile",
                    name="client",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="profiles",
                        to="profiles.client",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX "{INDEX}" ON "profiles_profile" ("client_id")',
                ),
            ],
        ),
    ]
