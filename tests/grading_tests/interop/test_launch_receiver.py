"""``make run`` (``python -m onfh_site.launch``) starts the DICOM receiver beside the web
server and the worker: AE ONFH on loopback, port ONFH_SCP_PORT (issue 15 item 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from grading.management.commands._processes import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.timeout(300)]


def test_the_embedded_launcher_starts_the_receiver(tmp_path: Path) -> None:
    scp_port, web_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ONFH_STORAGE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="onfh_site.settings",
        ONFH_VAR_DIR=tempfile.mkdtemp(dir=tmp_path),
        ONFH_SCP_PORT=str(scp_port),
        PORT=str(web_port),
        ONFH_PRELOAD_SEGMENTER="0",
        ONFH_TORCH_THREADS="1",
    )
    log = (tmp_path / "launch.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "onfh_site.launch", "--studies", "0"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(scp_port, process, 240, "the launcher's DICOM receiver")
        ae = AE(ae_title="STRANGER")
        ae.add_requested_context(Verification)
        # Called AE ONFH: the receiver answers, and rejects a calling AE it does not know.
        assoc = ae.associate("127.0.0.1", scp_port, ae_title="ONFH")
        assert assoc.is_rejected
        wrong = ae.associate("127.0.0.1", scp_port, ae_title="NOTONFH")
        assert wrong.is_rejected
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        time.sleep(0.2)
    # Stopped with the rest.
    with pytest.raises(OSError):
        import socket

        socket.create_connection(("127.0.0.1", scp_port), timeout=1).close()
