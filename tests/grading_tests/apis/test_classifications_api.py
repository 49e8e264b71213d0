"""A clinician sets a hip's JIC type, Kerboul angle and radiograph findings (the stage):
with a reason, audited, kept beside the AI's values; a student may not."""

from __future__ import annotations

from grading.models import AuditEvent


def _hip(world):
    body = world.client("clinician").get(f"/api/studies/{world.study.pk}/").json()
    return next(h for h in body["hips"] if h["side"] == "right")


def test_a_clinician_sets_jic_kerboul_and_findings(world):
    client = world.client("clinician")
    url = f"/api/studies/{world.study.pk}/classifications/"
    hip = _hip(world)
    assert hip["stage_source"] == "mri"
    answer = client.post(
        url,
        {
            "series_instance_uid": hip["series_instance_uid"],
            "side": "right",
            "jic_type": "C1",
            "kerboul_angle_deg": 230,
            "kerboul_partial": False,
            "reason": "read on the coronal T1 at the workstation",
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["jic_type"] == "C1" and answer.json()["kerboul_angle_deg"] == 230
    # Findings from the radiograph give the stage; the JIC type set before stays.
    answer = client.post(
        url,
        {
            "series_instance_uid": hip["series_instance_uid"],
            "side": "right",
            "findings": {"crescent_sign": True, "collapse_mm": 3.0},
            "reason": "AP pelvis of today: 3 mm flattening",
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    hip = _hip(world)
    assert hip["jic_type"] == "C1" and hip["kerboul_angle_deg"] == 230.0
    assert hip["stage_source"] == "clinician"
    assert hip["stage"] == "Steinberg IVB, ARCO IIIB"  # moderate: extent B
    events = list(AuditEvent.objects.filter(action="classification.change").order_by("id"))
    assert len(events) == 2
    assert events[0].before["jic_type"] is None and events[0].after["jic_type"] == "C1"
    assert events[1].after["stage_source"] == "clinician"
    assert events[1].reason.startswith("AP pelvis")
    # Clearing the findings returns the stage to the MRI's.
    assert (
        client.post(
            url,
            {
                "series_instance_uid": hip["series_instance_uid"],
                "side": "right",
                "findings": None,
                "reason": "wrong patient's radiograph",
            },
            format="json",
        ).status_code
        == 201
    )
    assert _hip(world)["stage"] == "MRI-positive, radiograph needed to stage"


def test_refusals(world):
    hip = _hip(world)
    url = f"/api/studies/{world.study.pk}/classifications/"
    body = {"series_instance_uid": hip["series_instance_uid"], "side": "right", "jic_type": "B"}
    assert world.client("clinician").post(url, body, format="json").status_code == 400  # no reason
    body["reason"] = "x"
    assert (
        world.client("clinician").post(url, {**body, "jic_type": "D"}, format="json").status_code
        == 400
    )
    assert (
        world.client("clinician")
        .post(url, {**body, "kerboul_angle_deg": 900}, format="json")
        .status_code
        == 400
    )
    assert world.client("student").post(url, body, format="json").status_code == 403
    assert world.client("foreign").post(url, body, format="json").status_code == 404
    assert not AuditEvent.objects.filter(action="classification.change").exists()
