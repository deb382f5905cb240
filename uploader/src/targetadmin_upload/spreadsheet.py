"""Cells a spreadsheet would run as a formula: one rule for every CSV targetadmin writes.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets, even in a file saved as CSV (CSV injection). Failed
rows carry ids and values exactly as someone sent them, so both CSVs of failed rows write such
a cell with a leading ``'``: the uploader's ``FILE.failed.csv`` (docs/uploader.md#the-result)
and the server's download on the Batches page (docs/screen.md#batches-pages).

The rule lives here, in the uploader's package, because the two may only depend one way. The
uploader is installed on hosts without the server and never imports Django or ``profiles``;
every host that runs the server installs the uploader from the same checkout (``make run``,
``make test``, docs/operations.md#start-up-and-processes), so the server always has this very
module, at the version it was tested with. This module imports nothing.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell``, with a leading ``'`` when a spreadsheet would run it as a formula."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell
