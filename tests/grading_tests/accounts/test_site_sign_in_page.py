"""The site admin's sign-in settings page (issue 15, left over): a page, not only the API
and the Django admin, to see and change the site's TOTP rule and provider groups; each
change audited with the admin's address, nothing written when nothing changed, a bad row a
clear error that keeps what was typed; others get 403 (members) or 404 (other sites)."""

from __future__ import annotations

import pytest
from django.test import Client

from grading.accounts.models import IdentityProviderGroup, SiteSignInPolicy
from grading.accounts.services import idp_group_set
from grading.models import AuditEvent
from grading.services import audit_verify
from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def north():
    site, south = SiteFactory(name="North"), SiteFactory(name="South")
    people = {}
    for name, where, role in (
        ("adm", site, "site_admin"),
        ("cli", site, "clinician"),
        ("sadm", south, "site_admin"),
    ):
        people[name] = UserFactory(username=name)
        MembershipFactory(user=people[name], site=where, role=role)
    idp_group_set(site=site, group="onfh-radiology", role="radiologist", actor=None)
    return site, south, people


def _client(user) -> Client:
    client = Client(REMOTE_ADDR="192.0.2.80")
    client.force_login(user)
    return client


def _changes() -> list[tuple[str, object, object, str | None]]:
    return [
        (e.action, e.before, e.after, e.client_address)
        # the fixture's set-up (actor: the system) left out
        for e in AuditEvent.objects.filter(action__startswith="site.", actor__isnull=False)
    ]


def test_a_site_admin_sees_and_changes_the_sign_in_settings(north) -> None:
    site, _, people = north
    admin = _client(people["adm"])
    # The top bar links the page; with one site it goes straight to it.
    worklist = admin.get("/")
    assert b'id="sign-in-settings-link"' in worklist.content
    assert admin.get("/sign-in-settings/")["Location"] == f"/sites/{site.pk}/sign-in-settings/"
    page = admin.get(f"/sites/{site.pk}/sign-in-settings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="onfh-radiology"' in html and 'value="radiologist" selected' in html
    assert "checked" not in html.split('id="id_require_totp"')[1].split(">")[0]
    assert _changes() == []  # looking changes nothing

    form = {
        "require_totp": "on",
        "group_1": "onfh-radiology",
        "role_1": "radiologist",
        "remove_1": "on",
        "group_2": "onfh-students",
        "role_2": "student",
        "group_3": "onfh-teachers",
        "role_3": "teacher",
        "group_4": "",
        "role_4": "",
    }
    saved = admin.post(f"/sites/{site.pk}/sign-in-settings/", form)
    assert saved.status_code == 302 and saved["Location"].endswith("?saved=1")
    assert SiteSignInPolicy.objects.get(site=site).require_totp
    assert dict(IdentityProviderGroup.objects.filter(site=site).values_list("group", "role")) == {
        "onfh-students": "student",
        "onfh-teachers": "teacher",
    }
    assert _changes() == [
        ("site.sign_in_policy", {"require_totp": False}, {"require_totp": True}, "192.0.2.80"),
        ("site.idp_group", {"group": "onfh-radiology", "role": "radiologist"}, None, "192.0.2.80"),
        ("site.idp_group", None, {"group": "onfh-students", "role": "student"}, "192.0.2.80"),
        ("site.idp_group", None, {"group": "onfh-teachers", "role": "teacher"}, "192.0.2.80"),
    ]
    assert {
        e.actor_id for e in AuditEvent.objects.filter(action__startswith="site.", seq__gt=1)
    } == {people["adm"].pk}
    assert audit_verify().ok


def test_saving_without_changes_writes_nothing_and_a_bad_row_keeps_the_form(north) -> None:
    site, _, people = north
    admin = _client(people["adm"])
    same = {"group_1": "onfh-radiology", "role_1": "radiologist"}
    assert admin.post(f"/sites/{site.pk}/sign-in-settings/", same).status_code == 302
    assert _changes() == []
    bad = {
        "require_totp": "on",
        "group_1": "onfh-radiology",
        "role_1": "radiologist",
        "group_2": "onfh-kings",
        "role_2": "emperor",
    }
    answer = admin.post(f"/sites/{site.pk}/sign-in-settings/", bad)
    assert answer.status_code == 400
    html = answer.content.decode()
    assert 'id="sign-in-error"' in html and "Role:" in html and "emperor" in html
    assert 'value="onfh-kings"' in html  # what was typed is still there
    # Nothing of the bad save is kept, the TOTP rule included.
    assert not SiteSignInPolicy.objects.filter(site=site, require_totp=True).exists()
    assert _changes() == []
    nameless = {"group_1": "", "role_1": "teacher"}
    answer = admin.post(f"/sites/{site.pk}/sign-in-settings/", nameless)
    assert answer.status_code == 400 and "Group: A group name is needed" in answer.content.decode()


def test_only_the_sites_admins_reach_the_page(north) -> None:
    site, south, people = north
    url = f"/sites/{site.pk}/sign-in-settings/"
    clinician = _client(people["cli"])
    assert clinician.get(url).status_code == 403
    assert clinician.post(url, {"require_totp": "on"}).status_code == 403
    assert clinician.get("/sign-in-settings/").status_code == 403
    assert b'id="sign-in-settings-link"' not in clinician.get("/").content
    other_admin = _client(people["sadm"])
    assert other_admin.get(url).status_code == 404
    assert other_admin.post(url, {"require_totp": "on"}).status_code == 404
    assert Client().get(url).status_code == 302  # to sign-in
    assert not SiteSignInPolicy.objects.filter(require_totp=True).exists()
    assert _changes() == []
