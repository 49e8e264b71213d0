"""The Celery app. Configuration comes from Django settings (CELERY_* names).

Queues: ``gpu`` for model work (one worker process per GPU, ``-c 1``), ``default`` for
the rest. Run a worker with ``celery -A onfh_site worker -Q gpu,default``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onfh_site.settings")

app = Celery("onfh_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
