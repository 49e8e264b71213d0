"""Whatever an administrator changes in the Django admin (a study's site and patient
identity, memberships, shares, DICOM peers, enrolments) is in the audit trail, with the
fields before and after (issue 13 item 12). Driven through the admin's own forms."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from grading.interop.models import RemoteAE
from grading.models import AuditEvent, Membership, StudyShare
from grading.services import audit_verify
from tests.grading_tests.factories import (
    MembershipFactory,
    SiteFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    user = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(user)
    return user


def _form_data(obj, **changes) -> dict:
    """The admin change form's POST data for ``obj`` as it stands, with ``changes``
    (the model's form and each inline formset with its management form)."""
    model_admin = admin.site._registry[type(obj)]
    request = RequestFactory().get("/")
    request.user = UserFactory(username="form-reader", is_superuser=True, is_staff=True)
    form = model_admin.get_form(request, obj)(instance=obj)
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is not None:
            data[name] = value
    for formset_class, _inline in model_admin.get_formsets_with_inlines(request, obj):
        formset = formset_class(instance=obj, prefix=formset_class.get_default_prefix())
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for index, inline_form in enumerate(formset.forms):
            for name in inline_form.fields:
                value = inline_form[name].value()
                if value is not None:
                    data[f"{formset.prefix}-{index}-{name}"] = value
    data.update(changes)
    return data


def _change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def test_moving_a_study_and_changing_its_patient_is_audited(client, root) -> None:
    study = StudyFactory(patient_name="DOE JANE", patient_id="P1")
    other = SiteFactory(name="South")
    answer = client.post(
        _change_url(study),
        _form_data(study, site=other.pk, patient_id="P2"),
        REMOTE_ADDR="10.9.9.9",
    )
    assert answer.status_code == 302, answer.content[:2000]
    event = AuditEvent.objects.get(action="admin.change", object_type="grading.study")
    assert event.study_id == study.pk and event.actor == root
    assert event.before == {"patient_id": "P1", "site": study.site_id}
    assert event.after == {"patient_id": "P2", "site": other.pk}
    assert event.client_address == "10.9.9.9"
    assert audit_verify().ok
    # The live message goes to the study's students too: no patient keys in it.
    from grading.models import OutboxMessage
    from grading.services.notify import study_audit_notify

    study_audit_notify(event_id=event.pk)
    live = [m.payload for m in OutboxMessage.objects.all() if m.payload["type"] == "study.audit"]
    assert live and all(p["event"]["after"]["patient_id"] is None for p in live)


def test_memberships_added_changed_and_deleted_in_the_admin_are_audited(client, root) -> None:
    site, user = SiteFactory(), UserFactory(username="newbie")
    add = reverse("admin:grading_membership_add")
    answer = client.post(add, {"user": user.pk, "site": site.pk, "role": "student"})
    assert answer.status_code == 302
    membership = Membership.objects.get(user=user)
    added = AuditEvent.objects.get(action="admin.add", object_type="grading.membership")
    assert added.after["role"] == "student" and added.object_id == str(membership.pk)

    answer = client.post(_change_url(membership), _form_data(membership, role="clinician"))
    assert answer.status_code == 302
    changed = AuditEvent.objects.get(action="admin.change", object_type="grading.membership")
    assert (changed.before, changed.after) == ({"role": "student"}, {"role": "clinician"})

    delete = reverse("admin:grading_membership_delete", args=[membership.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    deleted = AuditEvent.objects.get(action="admin.delete", object_type="grading.membership")
    assert deleted.before["role"] == "clinician" and deleted.object_id == str(membership.pk)


def test_a_membership_changed_inline_on_its_site_is_audited(client, root) -> None:
    membership = MembershipFactory(role="student")
    site = membership.site
    data = _form_data(site)
    data["memberships-0-role"] = "site_admin"
    answer = client.post(_change_url(site), data)
    assert answer.status_code == 302, answer.content[:3000]
    event = AuditEvent.objects.get(action="admin.change", object_type="grading.membership")
    assert event.before == {"role": "student"} and event.after == {"role": "site_admin"}


def test_shares_and_dicom_peers_are_audited(client, root) -> None:
    study = StudyFactory()
    share = StudyShare.objects.create(study=study, user=UserFactory(), note="")
    delete = reverse("admin:grading_studyshare_delete", args=[share.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    event = AuditEvent.objects.get(action="admin.delete", object_type="grading.studyshare")
    assert event.study_id == study.pk

    peer = RemoteAE.objects.create(ae_title="PACS1", site=study.site, address="10.0.0.5")
    answer = client.post(_change_url(peer), _form_data(peer, address="10.0.0.6"))
    assert answer.status_code == 302, answer.content[:2000]
    event = AuditEvent.objects.get(action="admin.change", object_type="interop.remoteae")
    assert (event.before, event.after) == ({"address": "10.0.0.5"}, {"address": "10.0.0.6"})


def test_the_user_admin_is_audited_without_the_password_hash(client, root) -> None:
    """Issue 13 follow-up: users added, changed (staff and superuser flips, groups),
    given a new password and deleted in Django's user admin are in the trail; the
    password hash never is."""
    import json

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    answer = client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "a-long-Passphrase-41",
            "password2": "a-long-Passphrase-41",
        },
        REMOTE_ADDR="10.1.2.3",
    )
    assert answer.status_code == 302, answer.content[:3000]
    user = User.objects.get(username="newcomer")
    added = AuditEvent.objects.get(action="admin.add", object_type="auth.user")
    assert added.object_id == str(user.pk) and added.actor == root
    assert added.after["username"] == "newcomer" and added.after["usable_password"] is True
    assert added.client_address == "10.1.2.3"

    radiology = Group.objects.create(name="radiology")
    joined = timezone.localtime(user.date_joined)
    answer = client.post(
        _change_url(user),
        {
            "username": "newcomer",
            "first_name": "",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [radiology.pk],
            "date_joined_0": joined.strftime("%Y-%m-%d"),
            "date_joined_1": joined.strftime("%H:%M:%S"),
            "initial-date_joined_0": joined.strftime("%Y-%m-%d"),
            "initial-date_joined_1": joined.strftime("%H:%M:%S"),
        },
    )
    assert answer.status_code == 302, answer.content[:3000]
    changes = AuditEvent.objects.filter(action="admin.change", object_type="auth.user")
    flips = next(e for e in changes if "is_superuser" in e.after)
    # (the form also drops date_joined's microseconds: a change of that field too)
    assert {k: flips.before[k] for k in ("is_staff", "is_superuser")} == {
        "is_staff": False,
        "is_superuser": False,
    }
    assert {k: flips.after[k] for k in ("is_staff", "is_superuser")} == {
        "is_staff": True,
        "is_superuser": True,
    }
    groups = next(e for e in changes if "groups" in e.after)
    assert (groups.before, groups.after) == ({"groups": []}, {"groups": [radiology.pk]})

    hash_before = User.objects.get(pk=user.pk).password
    answer = client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {
            "usable_password": "true",
            "password1": "another-Passphrase-42",
            "password2": "another-Passphrase-42",
        },
    )
    assert answer.status_code == 302, answer.content[:3000]
    changed = AuditEvent.objects.get(action="admin.password_change")
    assert changed.object_id == str(user.pk) and changed.actor == root
    assert changed.after == {"username": "newcomer", "usable_password": True}
    hash_after = User.objects.get(pk=user.pk).password

    delete = reverse("admin:auth_user_delete", args=[user.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    deleted = AuditEvent.objects.get(action="admin.delete", object_type="auth.user")
    assert deleted.before["username"] == "newcomer" and deleted.before["is_superuser"] is True

    trail = json.dumps([[e.before, e.after] for e in AuditEvent.objects.all()], default=str)
    for secret in (hash_before, hash_after, "Passphrase"):
        assert secret not in trail
    assert audit_verify().ok
