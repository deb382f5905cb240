"""A real OpenID Connect provider for the single sign-on tests: a small Django project of its
own (django-oauth-toolkit in OIDC mode), run as a separate process on a loopback port by
``tests/provider.py``, with its own SQLite database and an RSA signing key made at start."""
