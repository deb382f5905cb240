"""gunicorn settings, read automatically when gunicorn starts in this directory (make run).

Both follow from the profile APIs' contract (SPEC sections 5 and 6.1).
"""

# The legacy `access_token: <token>` header has an underscore in its name; gunicorn drops
# such headers by default. The application reads no other header that an underscore
# spelling could smuggle in, and trusts no forwarding headers.
header_map = "dangerous"

# A single update may carry an 8 KB query string (the application answers 413 past it);
# gunicorn's default 4094-byte request line, and its 8190 maximum, would refuse it first.
# 0 lifts gunicorn's limit (its parser still caps a line at 1 MB).
limit_request_line = 0
