from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0006_profile_api_allowed_networks'),
    ]

    operations = [
        migrations.AddField(
            model_name='profileapisettings',
            name='token_retrievable',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='profiletoken',
            name='ciphertext',
            field=models.TextField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('auth_enabled', 'Require Authentication enabled'), ('auth_disabled', 'Require Authentication disabled'), ('token_generated', 'Token generated'), ('token_regenerated', 'Token re-generated'), ('token_revoked', 'Token revoked'), ('grace_started', "Previous token's grace period started"), ('grace_ended', "Previous token's grace period ended"), ('previous_token_revoked', 'Previous token revoked'), ('reminder_sent', 'Expiry reminder sent'), ('client_created', 'Client created'), ('role_granted', 'Role granted'), ('allowed_networks_changed', 'Allowed networks changed'), ('token_retrieval_enabled', 'Token retrieval allowed'), ('token_retrieval_disabled', 'Token retrieval turned off'), ('token_retrieved', 'Token retrieved')], max_length=32),
        ),
    ]
