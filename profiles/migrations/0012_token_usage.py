"""Token usage per UTC day (docs/tokens.md#usage): one row per token and day, the client's
own token (no integration) and each integration keyed by a partial unique index of its own,
the targets of the writers' upsert."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0011_single_sign_on'),
    ]

    operations = [
        migrations.CreateModel(
            name='TokenUsage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('accepted', models.PositiveBigIntegerField(default=0)),
                ('refused_expired', models.PositiveBigIntegerField(default=0)),
                ('refused_revoked', models.PositiveBigIntegerField(default=0)),
                ('refused_scope', models.PositiveBigIntegerField(default=0)),
                ('refused_network', models.PositiveBigIntegerField(default=0)),
                ('fetch_calls', models.PositiveBigIntegerField(default=0)),
                ('update_calls', models.PositiveBigIntegerField(default=0)),
                ('batch_calls', models.PositiveBigIntegerField(default=0)),
                ('client', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='token_usage', to='profiles.client')),
                ('integration', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='usage', to='profiles.integration')),
            ],
            options={
                'verbose_name_plural': 'token usage',
                'constraints': [models.UniqueConstraint(condition=models.Q(('integration__isnull', True)), fields=('client', 'day'), name='one_usage_row_per_client_token_day'), models.UniqueConstraint(condition=models.Q(('integration__isnull', False)), fields=('integration', 'day'), name='one_usage_row_per_integration_day')],
            },
        ),
    ]
