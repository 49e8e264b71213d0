"""The PACS part of ``manage.py bench_interop`` (issue 15 item 6), beside Orthanc doing
the same work. Not a command (the leading underscore keeps Django from listing it).

Peers, all on loopback: Orthanc "A" (the hospital PACS, holding the study), the portal
(daphne, ``manage.py dicom_scp`` as the C-MOVE destination, one worker for the analysis
the send needs) and Orthanc "B" (the peer that does the same work as the portal):

* query/retrieve of a 200-instance study from A: the portal's C-FIND + C-MOVE to its
  receiver (``grading.interop.scu``, what the retrieve task runs) against B's
  ``/modalities/a/query`` + ``/modalities/a/move`` to itself;
* the portal's DICOMweb whole-study retrieve measured from Orthanc's DICOMweb client
  (B: ``/dicom-web/servers/portal/retrieve``), against B retrieving the same study from
  A's DICOMweb;
* sending SEG + SR + summary back to A (``pacs_send_run``: building the three objects
  from the analysed series, then one C-STORE association), against B C-STOREing the
  same three objects to A (``/modalities/a/store``: sending only, nothing to build).
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from grading.interop import scu
from grading.interop.management.commands.bench_interop import Orthanc, fresh_copy, phantom_files
from grading.management.commands._processes import ROOT, Stack, free_port, wait_for_port


def _http(port: int, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data)
    response = conn.getresponse()
    text = response.read()
    conn.close()
    if response.status >= 400:
        raise RuntimeError(f"{method} {path}: HTTP {response.status} {text[:300]!r}")
    return json.loads(text) if text else None


def _orthanc_count(orthanc: Orthanc, study_uid: str) -> int:
    found = _http(
        orthanc.http_port,
        "POST",
        "/tools/find",
        {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}},
    )
    return len(found or [])


def _orthanc_delete_study(orthanc: Orthanc, study_uid: str) -> None:
    for study_id in _http(
        orthanc.http_port,
        "POST",
        "/tools/find",
        {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}},
    ):
        _http(orthanc.http_port, "DELETE", f"/studies/{study_id}")


def _portal_count(stack: Stack, study_uid: str) -> int:
    conn = stack.connection()
    code, answer = stack.get_json(conn, f"/api/dicomweb/studies?StudyInstanceUID={study_uid}")
    conn.close()
    return int(answer[0]["00201208"]["Value"][0]) if code == 200 and answer else 0


def run(
    folder: Path, *, rounds: int, series: int, slices: int, matrix: int, out: Any
) -> dict[str, Any]:
    """Runs the three measurements; returns the figures (seconds per run) and context."""
    source = phantom_files(folder / "source", series=series, slices=slices, matrix=matrix)
    n = len(source)
    stack = Stack(folder / "portal")
    a, b = Orthanc(folder / "orthanc-a"), Orthanc(folder / "orthanc-b")
    try:
        out(f"{n} files; starting the portal, its receiver and two Orthancs")
        stack.manage("migrate", "--noinput")
        stack.create_user()
        stack.start_server()
        scp_port = free_port()
        scp = stack.spawn(
            "dicom_scp",
            [sys.executable, str(ROOT / "manage.py"), "dicom_scp", "--port", str(scp_port)],
        )
        wait_for_port(scp_port, scp, 120, "dicom_scp")
        a_dicom, b_dicom, a_http = free_port(), free_port(), free_port()
        a.start(
            {
                "DicomPort": a_dicom,
                "HttpPort": a_http,
                "DicomModalities": {
                    "onfh": ["ONFH", "127.0.0.1", scp_port],
                    "b": ["ORTHANCB", "127.0.0.1", b_dicom],
                },
            }
        )
        b.start(
            {
                "DicomAet": "ORTHANCB",
                "DicomPort": b_dicom,
                "DicomModalities": {"a": ["ORTHANC", "127.0.0.1", a_dicom]},
                "DicomWeb": {
                    "Enable": True,
                    "Root": "/dicom-web/",
                    "Servers": {
                        "portal": {
                            "Url": f"http://127.0.0.1:{stack.port}/api/dicomweb/",
                            "HttpHeaders": {"Authorization": f"Token {stack.token}"},
                        },
                        "a": {"Url": f"http://127.0.0.1:{a_http}/dicom-web/"},
                    },
                },
            }
        )
        stack.manage(
            "shell",
            "-c",
            "from grading.interop.models import PacsNode\n"
            "from grading.models import Site\n"
            f"PacsNode.objects.get_or_create(name='A', site=Site.objects.get(code='bench'), "
            f"defaults=dict(ae_title='ORTHANC', host='127.0.0.1', port={a_dicom}))\n",
        )
        peer = scu.Peer("ORTHANC", "127.0.0.1", a_dicom)
        times: dict[str, list[float]] = {}

        for r in range(rounds):
            study_uid, files = fresh_copy(source, folder / "run")
            for path in files:
                _http(a.http_port, "POST", "/instances", raw=path.read_bytes())
            order = ("portal", "orthanc") if r % 2 == 0 else ("orthanc", "portal")
            for who in order:
                start = time.perf_counter()
                if who == "portal":
                    found = scu.find_studies(calling_ae="ONFH", peer=peer, patient_id="PHANTOM")
                    assert any(f.study_instance_uid == study_uid for f in found)
                    moved = scu.move_study(
                        calling_ae="ONFH",
                        peer=peer,
                        study_instance_uid=study_uid,
                        destination_ae="ONFH",
                    )
                    seconds = time.perf_counter() - start
                    stored = _portal_count(stack, study_uid)
                    if moved.failed or stored != n:
                        raise RuntimeError(f"portal Q/R: {stored} of {n} stored ({moved})")
                else:
                    _http(
                        b.http_port,
                        "POST",
                        "/modalities/a/query",
                        {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}},
                    )
                    _http(
                        b.http_port,
                        "POST",
                        "/modalities/a/move",
                        {
                            "Level": "Study",
                            "Resources": [{"StudyInstanceUID": study_uid}],
                            "TargetAet": "ORTHANCB",
                        },
                    )
                    seconds = time.perf_counter() - start
                    if _orthanc_count(b, study_uid) != n:
                        raise RuntimeError("Orthanc B Q/R incomplete")
                times.setdefault(f"qr-{who}", []).append(seconds)
                out(f"round {r + 1} Q/R {who}: {seconds:.2f} s")

            # DICOMweb whole-study retrieve by Orthanc B's client: from the portal, from A.
            for who in order:
                _orthanc_delete_study(b, study_uid)
                server = "portal" if who == "portal" else "a"
                start = time.perf_counter()
                _http(
                    b.http_port,
                    "POST",
                    f"/dicom-web/servers/{server}/retrieve",
                    {"Resources": [{"Study": study_uid}]},
                )
                seconds = time.perf_counter() - start
                if _orthanc_count(b, study_uid) != n:
                    raise RuntimeError(f"DICOMweb retrieve from {server}: incomplete")
                times.setdefault(f"wado-{who}", []).append(seconds)
                out(f"round {r + 1} DICOMweb study retrieve from {who}: {seconds:.2f} s")

        # Sending results back: one analysed series (the worker analyses what was queued
        # last: the queue is emptied first so it does not grind through every round).
        stack.spawn(
            "purge", [sys.executable, "-m", "celery", "-A", "onfh_site", "purge", "-f"]
        ).wait()
        small = phantom_files(folder / "small", series=1, slices=20, matrix=256)
        code, body, _ = stack.curl_upload(small)
        study_id = int(body["studies"][0]["id"])
        stack.start_worker("worker", "gpu,default", extra=("--pool", "solo"))
        deadline = time.monotonic() + 1800
        while True:
            conn = stack.connection()
            _, detail = stack.get_json(conn, f"/api/studies/{study_id}/")
            conn.close()
            if detail["status"] in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(2)
        if detail["status"] != "done":
            raise RuntimeError(f"the analysis of the series to send ended {detail['status']}")
        series_id = detail["series"][0]["id"]
        small_uid = detail["study_instance_uid"]
        send_script = (
            "import time, json\n"
            "from django.contrib.auth.models import User\n"
            "from grading.interop.models import PacsNode\n"
            "from grading.interop.services import series_send_request, pacs_send_run\n"
            "from grading.interop import tasks\n"
            "from grading.models import Series\n"
            "from unittest import mock\n"
            "with mock.patch.object(tasks.pacs_send, 'delay'):\n"
            f"    send = series_send_request(user=User.objects.get(username='bench'), "
            f"series=Series.objects.get(pk={series_id}), node=PacsNode.objects.get(name='A'), "
            "objects=['seg', 'sr', 'summary'])\n"
            "start = time.perf_counter()\n"
            "pacs_send_run(send_id=send.pk)\n"
            "seconds = time.perf_counter() - start\n"
            "send.refresh_from_db()\n"
            "answer = {'state': send.state, 'seconds': seconds, 'sent': send.sent}\n"
            "print('SEND', json.dumps(answer))\n"
        )
        sent_ids: list[str] = []
        for r in range(rounds):
            line = next(
                x
                for x in stack.manage("shell", "-c", send_script).splitlines()
                if x.startswith("SEND")
            )
            result = json.loads(line.split(" ", 1)[1])
            if result["state"] != "done":
                raise RuntimeError(f"send: {result}")
            times.setdefault("send-portal", []).append(result["seconds"])
            out(f"round {r + 1} send SEG+SR+summary from the portal: {result['seconds']:.2f} s")
            uids = {item["sop_instance_uid"] for item in result["sent"]}
            sent_ids = [
                i
                for i in _http(
                    a.http_port,
                    "POST",
                    "/tools/find",
                    {"Level": "Instance", "Query": {"StudyInstanceUID": small_uid}},
                )
                if _http(a.http_port, "GET", f"/instances/{i}/simplified-tags")["SOPInstanceUID"]
                in uids
            ]
        # Orthanc B sends the same three objects to A.
        for orthanc_id in sent_ids:
            data = http.client.HTTPConnection("127.0.0.1", a.http_port, timeout=60)
            data.request("GET", f"/instances/{orthanc_id}/file")
            _http(b.http_port, "POST", "/instances", raw=data.getresponse().read())
            data.close()
        b_ids = [
            i
            for i in _http(
                b.http_port,
                "POST",
                "/tools/find",
                {"Level": "Instance", "Query": {"StudyInstanceUID": small_uid}},
            )
        ]
        for r in range(rounds):
            start = time.perf_counter()
            _http(
                b.http_port,
                "POST",
                "/modalities/a/store",
                {"Resources": b_ids, "Synchronous": True},
            )
            times.setdefault("send-orthanc", []).append(time.perf_counter() - start)
            out(
                f"round {r + 1} C-STORE of the same 3 objects by Orthanc B: "
                f"{times['send-orthanc'][-1]:.2f} s"
            )
        size_mb = sum(p.stat().st_size for p in source) / 1e6
        return {"times": times, "n": n, "size_mb": size_mb, "orthanc": a.version()}
    finally:
        stack.stop_all()
        a.stop()
        b.stop()


def table(figures: dict[str, Any]) -> str:
    times, n = figures["times"], figures["n"]

    def cell(key: str) -> str:
        runs = times.get(key, [])
        if not runs:
            return "–"
        return f"{', '.join(f'{x:.2f}' for x in runs)} | **{statistics.median(runs):.2f}**"

    orthanc = f"Orthanc {figures['orthanc']}"
    rows = [
        (f"C-FIND + C-MOVE of a {n}-instance study from Orthanc A", "portal", "qr-portal"),
        ("same", f"{orthanc} B (`/modalities/a/query` + `move`)", "qr-orthanc"),
        (
            f"DICOMweb whole-study retrieve ({n} instances) by Orthanc B's client",
            "from the portal (`/api/dicomweb/studies/{uid}`)",
            "wado-portal",
        ),
        ("same", f"from {orthanc} A's DICOMweb", "wado-orthanc"),
        (
            "SEG + SR + summary of a 20-slice series to Orthanc A",
            "portal (builds the three, then one association)",
            "send-portal",
        ),
        (
            "the same 3 objects, already built",
            f"{orthanc} B (`/modalities/a/store`)",
            "send-orthanc",
        ),
    ]
    lines = ["| work | done by | seconds per run | median s |", "|---|---|---|---|"]
    lines += [f"| {work} | {who} | {cell(key)} |" for work, who, key in rows]
    return "\n".join(lines)
