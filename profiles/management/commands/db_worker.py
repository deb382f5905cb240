"""``manage.py db_worker``: django-tasks-db's task worker, which also beats a heartbeat.

The heartbeat (``targetadmin_worker_last_heartbeat_timestamp_seconds``,
docs/operations.md#metrics) is beaten every ``WORKER_HEARTBEAT_SECONDS`` by a thread of
the worker's process while metrics are on, whether the worker waits for a task or applies
a batch; it stops when the process does. This command takes the place of django-tasks-db's
own because ``profiles`` comes before ``django_tasks_db`` in ``INSTALLED_APPS``.
"""

from __future__ import annotations

from typing import Any

from django_tasks_db.management.commands import db_worker

from profiles import tasks


class Command(db_worker.Command):
    help = "Run a database background worker, beating a heartbeat for /metrics"

    def handle(self, *args: Any, **options: Any) -> None:
        tasks.start_heartbeat()
        super().handle(*args, **options)
