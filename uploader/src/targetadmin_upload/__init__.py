"""targetadmin-upload: bulk-update profiles from a CSV or JSON Lines file (docs/uploader.md).

A client of targetadmin's HTTP API only: it writes Adobe's batch file format itself, sends it
in parts to ``/m2/<client>/[v2/]profile/batchUpdate`` and follows each part's ``batchStatus``.
"""

__version__ = "0.1.0"
