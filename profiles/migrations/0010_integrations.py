"""Integration tokens (docs/tokens.md#integration-tokens): a client's named integrations,
each with its permissions, and its tokens as profile token rows pointing at it. The
one-current and one-previous constraints of a client's own token now leave integration tokens
out; each integration has its own."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0009_profile_client_index_covered'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Integration',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=64)),
                ('permissions', models.PositiveSmallIntegerField()),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ('name', 'id'),
            },
        ),
        migrations.RemoveConstraint(
            model_name='profiletoken',
            name='one_current_token_per_client',
        ),
        migrations.RemoveConstraint(
            model_name='profiletoken',
            name='one_previous_token_in_grace_per_client',
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('auth_enabled', 'Require Authentication enabled'), ('auth_disabled', 'Require Authentication disabled'), ('token_generated', 'Token generated'), ('token_regenerated', 'Token re-generated'), ('token_revoked', 'Token revoked'), ('grace_started', "Previous token's grace period started"), ('grace_ended', "Previous token's grace period ended"), ('previous_token_revoked', 'Previous token revoked'), ('reminder_sent', 'Expiry reminder sent'), ('client_created', 'Client created'), ('role_granted', 'Role granted'), ('allowed_networks_changed', 'Allowed networks changed'), ('token_retrieval_enabled', 'Token retrieval allowed'), ('token_retrieval_disabled', 'Token retrieval turned off'), ('token_retrieved', 'Token retrieved'), ('integration_added', 'Integration token added'), ('integration_changed', 'Integration token changed'), ('integration_regenerated', 'Integration token re-generated'), ('integration_revoked', 'Integration token revoked')], max_length=32),
        ),
        migrations.AddField(
            model_name='integration',
            name='client',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='integrations', to='profiles.client'),
        ),
        migrations.AddField(
            model_name='integration',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='profiletoken',
            name='integration',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='tokens', to='profiles.integration'),
        ),
        migrations.AddConstraint(
            model_name='profiletoken',
            constraint=models.UniqueConstraint(condition=models.Q(('grace_until__isnull', True), ('integration__isnull', True), ('revoked_at__isnull', True)), fields=('client',), name='one_current_token_per_client'),
        ),
        migrations.AddConstraint(
            model_name='profiletoken',
            constraint=models.UniqueConstraint(condition=models.Q(('grace_until__isnull', False), ('integration__isnull', True), ('revoked_at__isnull', True)), fields=('client',), name='one_previous_token_in_grace_per_client'),
        ),
        migrations.AddConstraint(
            model_name='profiletoken',
            constraint=models.UniqueConstraint(condition=models.Q(('grace_until__isnull', True), ('revoked_at__isnull', True)), fields=('integration',), name='one_current_token_per_integration'),
        ),
        migrations.AddConstraint(
            model_name='profiletoken',
            constraint=models.UniqueConstraint(condition=models.Q(('grace_until__isnull', False), ('revoked_at__isnull', True)), fields=('integration',), name='one_previous_token_in_grace_per_integration'),
        ),
        migrations.AddConstraint(
            model_name='integration',
            constraint=models.UniqueConstraint(condition=models.Q(('revoked_at__isnull', True)), fields=('client', 'name'), name='one_unrevoked_integration_name_per_client'),
        ),
        migrations.AddConstraint(
            model_name='integration',
            constraint=models.CheckConstraint(condition=models.Q(('permissions__gte', 1), ('permissions__lte', 7)), name='integration_permissions_known'),
        ),
    ]
