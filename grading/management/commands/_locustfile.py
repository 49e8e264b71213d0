"""The load of ``manage.py bench_load``, run by locust in its own process (gevent).

50 ``Browser`` users walk the worklist and open studies as the viewer does (detail,
DICOM slices, label maps, audit); 10 ``Uploader`` users each upload one series at the
same time, then poll it until it is graded. Configured through the environment:
BENCH_TOKEN, BENCH_UPLOADS (JSON: one list of file paths per uploader).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time

from locust import HttpUser, between, constant, task

TOKEN = os.environ["BENCH_TOKEN"]
UPLOADS: list[list[str]] = json.loads(os.environ["BENCH_UPLOADS"])
POLL_LIMIT_S = float(os.environ.get("BENCH_POLL_LIMIT_S", "600"))
_next_upload = itertools.count()


class Browser(HttpUser):
    fixed_count = int(os.environ.get("BENCH_BROWSERS", "50"))
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Token {TOKEN}"
        self.studies: list[int] = []
        self.worklist()

    @task(3)
    def worklist(self) -> None:
        with self.client.get(
            "/api/studies/?page_size=50", name="GET /api/studies/", catch_response=True
        ) as response:
            if response.status_code == 200:
                self.studies = [s["id"] for s in response.json()["results"]]

    @task(1)
    def worklist_filtered(self) -> None:
        self.client.get(
            "/api/studies/?status=done&ordering=-grade", name="GET /api/studies/?filters"
        )

    @task(4)
    def viewer(self) -> None:
        if not self.studies:
            return
        study_id = random.choice(self.studies)
        response = self.client.get(f"/api/studies/{study_id}/", name="GET /api/studies/[id]/")
        if response.status_code != 200:
            return
        instances = [i for s in response.json()["series"] for i in s["instances"]]
        for instance in random.sample(instances, min(3, len(instances))):
            self.client.get(
                f"/api/instances/{instance['id']}/dicom/", name="GET /api/instances/[id]/dicom/"
            )
            if instance.get("labelmap_url"):  # as the viewer: once the analysis is done
                self.client.get(
                    instance["labelmap_url"], name="GET /api/instances/[id]/labelmap.png"
                )

    @task(1)
    def audit(self) -> None:
        if self.studies:
            self.client.get(
                f"/api/studies/{random.choice(self.studies)}/audit/",
                name="GET /api/studies/[id]/audit/",
            )


class Uploader(HttpUser):
    fixed_count = int(os.environ.get("BENCH_UPLOADERS", "10"))
    wait_time = constant(1)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Token {TOKEN}"
        index = next(_next_upload)
        self.paths = UPLOADS[index] if index < len(UPLOADS) else []

    @task
    def upload_then_wait(self) -> None:
        if not self.paths:
            time.sleep(5)
            return
        paths, self.paths = self.paths, []
        files = [
            ("files", (os.path.basename(p), open(p, "rb"), "application/dicom")) for p in paths
        ]
        try:
            response = self.client.post("/api/uploads/", files=files, name="POST /api/uploads/")
        finally:
            for _, (_, handle, _) in files:
                handle.close()
        if response.status_code != 201:
            return
        study_id = response.json()["studies"][0]["id"]
        deadline = time.monotonic() + POLL_LIMIT_S
        while time.monotonic() < deadline:
            poll = self.client.get(
                f"/api/studies/{study_id}/", name="GET /api/studies/[id]/ (uploader polls)"
            )
            if poll.status_code == 200 and poll.json()["status"] in ("done", "failed"):
                return
            time.sleep(2)
