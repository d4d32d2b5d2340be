"""The permission matrix: every role against every permission, and the reasons for denials."""

from __future__ import annotations

import pytest

from faceward.security.errors import Forbidden, RateLimited, Unauthenticated
from faceward.security.permissions import Permission, Role
from faceward.security.policy import ROLE_PERMISSIONS, Person, Principal, authorize

P = Permission
EXPECTED = {
    Role.ADMIN: {P.KEYS_MANAGE, P.USAGE_READ, P.AUDIT_READ, P.SETTINGS_MANAGE, P.SIGN_IN_MANAGE, P.GALLERY_MIGRATE},
    Role.ENROLLER: {P.SUBJECTS_READ, P.SUBJECTS_WRITE, P.FACES_WRITE, P.DETECT},
    Role.SEARCHER: {P.SEARCH, P.VERIFY, P.DETECT, P.REVIEW_READ, P.REVIEW_WRITE},
    Role.AUDITOR: {P.AUDIT_READ},
}


def test_permission_strings_are_scope_resource_action() -> None:
    for permission in Permission:
        scope, resource, action = permission.value.split(":")
        assert scope in {"tenant", "gallery"} and resource and action


def test_every_role_has_an_entry() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_matrix(role: Role, permission: Permission) -> None:
    principal = Principal("t_1", "k1", role)
    if permission in EXPECTED[role]:
        authorize(principal, permission)
    else:
        with pytest.raises(Forbidden) as caught:
            authorize(principal, permission)
        assert role.value in caught.value.reason and permission.value in caught.value.reason
        assert caught.value.status == 403 and caught.value.code == "forbidden"


def test_error_statuses() -> None:
    assert (Unauthenticated().status, Unauthenticated().code) == (401, "unauthenticated")
    limited = RateLimited(retry_after=7)
    assert (limited.status, limited.code, limited.retry_after) == (429, "rate_limited", 7)
    assert RateLimited(retry_after=0).retry_after == 1


def test_a_person_is_named_by_issuer_and_subject_and_counted_by_person_id() -> None:
    person = Person("p_1", "https://idp.example.org", "00u1abc", "Alice Example")
    principal = Principal("t_1", "p_1", Role.SEARCHER, person=person)
    assert principal.actor == "person:https://idp.example.org 00u1abc"  # never the display name
    assert principal.log_actor == "person:p_1"  # log lines shipped off the host: the opaque id only
    assert Principal("t_1", "k1", Role.SEARCHER).actor == "key:k1"
    assert person == Person("p_1", "https://idp.example.org", "00u1abc", "Alice Renamed")  # the name is not identity


def test_policy_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        ROLE_PERMISSIONS[Role.SEARCHER] = frozenset(Permission)  # type: ignore[index]
