"""Settings for the online benchmark: the product's own, plus a baseline view.

The baseline answers through exactly the product's middleware stack, so the benchmark can
compare each profile API with what Django itself costs on this machine. It exists only under
this settings module; the product's URLs never include it.
"""

from __future__ import annotations

from targetadmin.settings import *  # noqa: F403

ROOT_URLCONF = "bench.online_urls"
