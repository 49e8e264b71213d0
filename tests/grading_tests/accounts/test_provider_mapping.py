"""The provider's groups set site memberships (per-site rules, audited); a provider
account never takes over a local account; the API is for site admins only."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from grading.accounts.services import idp_group_set, provider_user_sign_in
from grading.models import AuditEvent, Membership
from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db
ISS = "https://idp.hospital.example"


def test_groups_map_to_roles_and_follow_the_provider():
    north, south = SiteFactory(name="North"), SiteFactory(name="South")
    idp_group_set(site=north, group="onfh-students", role="student", actor=None)
    idp_group_set(site=north, group="onfh-radiology", role="radiologist", actor=None)
    idp_group_set(site=south, group="onfh-radiology", role="clinician", actor=None)
    claims = {
        "sub": "42",
        "preferred_username": "rita",
        "groups": ["onfh-students", "onfh-radiology"],
    }
    user = provider_user_sign_in(issuer=ISS, claims=claims)
    roles = dict(Membership.objects.filter(user=user).values_list("site__name", "role"))
    assert roles == {"North": "radiologist", "South": "clinician"}  # the strongest role wins
    assert AuditEvent.objects.filter(action="membership.provider").count() == 2

    again = provider_user_sign_in(issuer=ISS, claims={**claims, "groups": ["onfh-students"]})
    assert again.pk == user.pk
    roles = dict(Membership.objects.filter(user=user).values_list("site__name", "role"))
    assert roles == {"North": "student"}


def test_a_provider_account_never_takes_over_a_local_one():
    local = UserFactory(username="rita")
    user = provider_user_sign_in(issuer=ISS, claims={"sub": "42", "preferred_username": "rita"})
    assert user.pk != local.pk and user.username == "rita-2"
    assert not user.has_usable_password()


def test_a_membership_given_by_hand_is_left_alone():
    site = SiteFactory(name="North")
    idp_group_set(site=site, group="onfh-students", role="student", actor=None)
    user = provider_user_sign_in(issuer=ISS, claims={"sub": "7", "preferred_username": "sam"})
    MembershipFactory(user=user, site=site, role="clinician")
    provider_user_sign_in(issuer=ISS, claims={"sub": "7", "groups": ["onfh-students"]})
    provider_user_sign_in(issuer=ISS, claims={"sub": "7", "groups": []})
    assert Membership.objects.get(user=user).role == "clinician"


def test_sign_in_settings_api_is_for_site_admins_and_audited():
    site = SiteFactory(name="North")
    admin, clinician = UserFactory(username="adm"), UserFactory(username="cli")
    MembershipFactory(user=admin, site=site, role="site_admin")
    MembershipFactory(user=clinician, site=site, role="clinician")
    body = {"require_totp": True, "idp_groups": [{"group": "g1", "role": "teacher"}]}
    api = APIClient()
    api.force_authenticate(clinician)
    assert api.put(f"/api/sites/{site.pk}/sign-in/", body, format="json").status_code == 403
    api.force_authenticate(admin)
    answer = api.put(f"/api/sites/{site.pk}/sign-in/", body, format="json")
    assert answer.status_code == 200 and answer.json() == body
    bad = {"require_totp": True, "idp_groups": [{"group": "g1", "role": "emperor"}]}
    assert api.put(f"/api/sites/{site.pk}/sign-in/", bad, format="json").status_code == 400
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("site.sign_in_policy") == 1 and actions.count("site.idp_group") == 1


def test_admin_edits_go_through_the_audited_services():
    from django.test import Client

    from grading.accounts.models import IdentityProviderGroup

    site = SiteFactory(name="North")
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    answer = client.post(
        "/admin/accounts/identityprovidergroup/add/",
        {"site": site.pk, "group": "onfh-radiology", "role": "radiologist"},
    )
    assert answer.status_code == 302, answer.content[:500]
    row = IdentityProviderGroup.objects.get()
    client.post(f"/admin/accounts/identityprovidergroup/{row.pk}/delete/", {"post": "yes"})
    assert not IdentityProviderGroup.objects.exists()
    events = AuditEvent.objects.filter(action="site.idp_group").order_by("seq")
    assert [(e.before, e.after) for e in events] == [
        (None, {"group": "onfh-radiology", "role": "radiologist"}),
        ({"group": "onfh-radiology", "role": "radiologist"}, None),
    ]
    assert all(e.actor_id == root.pk for e in events)
