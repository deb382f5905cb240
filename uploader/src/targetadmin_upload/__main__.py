"""``python -m targetadmin_upload``, the same as the ``targetadmin-upload`` command."""

from targetadmin_upload.cli import main

raise SystemExit(main())
