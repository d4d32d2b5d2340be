"""The one place access is decided: which role holds which permission.

Roles are deliberately disjoint (separation of duties): the admin who mints
keys cannot search the gallery with their own key, the searcher cannot enroll,
and the auditor reads the audit log and nothing else. An admin who needs to
search mints a searcher key, and that act is itself audited.

Reviewing candidates (#6) belongs to the searcher: the examiner who ran the
search is the one who holds the probe, and a confirmation needs a second
searcher key (:mod:`faceward.services.reviews`). Only reviewers see enrolled
faces' thumbnails. Detection (boxes and quality of a photo, nothing stored or
matched) serves the searcher's probe and the enroller's photos alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from faceward.security.errors import Forbidden
from faceward.security.permissions import Permission, Role
from faceward.store.records import TenantRecord

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.ADMIN: frozenset(
            {Permission.KEYS_MANAGE, Permission.USAGE_READ, Permission.AUDIT_READ, Permission.SETTINGS_MANAGE,
             Permission.SIGN_IN_MANAGE, Permission.GALLERY_MIGRATE}
        ),
        Role.ENROLLER: frozenset(
            {Permission.SUBJECTS_READ, Permission.SUBJECTS_WRITE, Permission.FACES_WRITE, Permission.DETECT}
        ),
        Role.SEARCHER: frozenset(
            {Permission.SEARCH, Permission.VERIFY, Permission.DETECT, Permission.REVIEW_READ, Permission.REVIEW_WRITE}
        ),
        Role.AUDITOR: frozenset({Permission.AUDIT_READ}),
    }
)


OPERATOR_PERMISSIONS: frozenset[Permission] = frozenset(
    {
        Permission.SUBJECTS_READ, Permission.SUBJECTS_WRITE, Permission.FACES_WRITE, Permission.SEARCH,
        Permission.VERIFY, Permission.DETECT, Permission.SIGN_IN_MANAGE, Permission.GALLERY_MIGRATE,
    }
)
"""What the host's operator may do in a tenant through the CLI: the gallery's acts and connecting the tenant's
sign-in provider (``faceward oidc connect``), not its keys or audit log (those have their own operator commands)."""

OPERATOR_KEY = "operator"
"""The key id an operator's acts are counted and rate limited under."""


@dataclass(frozen=True)
class Operator:
    """The person at the host's shell: the system user and the command they ran (never its arguments)."""

    user: str
    command: str


@dataclass(frozen=True)
class Person:
    """A person signed in through the tenant's OpenID Connect provider (decision 021): who the provider says."""

    id: str
    issuer: str
    subject: str
    name: str = field(default="", compare=False, repr=False)

    @property
    def actor(self) -> str:
        return person_actor(self.issuer, self.subject)


def person_actor(issuer: str, subject: str) -> str:
    """How the audit log names a person: the provider's issuer and its subject identifier (never the name)."""
    return f"person:{issuer} {subject}"


@dataclass(frozen=True)
class Principal:
    """Who is asking: an API key of one tenant with its role, a person signed in to the console through the
    tenant's provider (``key_id`` is then the person's id, ``p_...``: rate limits and reviews count people),
    or the host's operator."""

    tenant_id: str
    key_id: str
    role: Role
    operator: Operator | None = None
    tenant: TenantRecord | None = field(default=None, compare=False, repr=False)
    """The tenant row as authentication read it: the act uses it instead of reading it again."""
    person: Person | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        if self.operator is not None:
            return "operator"
        return self.person.actor if self.person is not None else f"key:{self.key_id}"

    @property
    def log_actor(self) -> str:
        """How log lines shipped off the host name this principal: as :attr:`actor`, except that a person is
        their opaque person id (a provider's subject identifier can be an e-mail address)."""
        return f"person:{self.person.id}" if self.person is not None else self.actor


def operator_principal(tenant_id: str, operator: Operator) -> Principal:
    """The CLI's principal in ``tenant_id``: the operator, holding :data:`OPERATOR_PERMISSIONS`."""
    return Principal(tenant_id, OPERATOR_KEY, Role.ADMIN, operator)


def permissions_of(role: Role) -> frozenset[Permission]:
    return ROLE_PERMISSIONS.get(role, frozenset())


def allowed(principal: Principal, permission: Permission) -> bool:
    if principal.operator is not None:
        return permission in OPERATOR_PERMISSIONS
    return permission in permissions_of(principal.role)


def authorize(principal: Principal, permission: Permission) -> None:
    """Return if ``principal`` holds ``permission``; raise :class:`Forbidden` with the reason otherwise."""
    if not allowed(principal, permission):
        who = "the operator" if principal.operator is not None else f"role {principal.role.value!r}"
        raise Forbidden(reason=f"{who} lacks permission {permission.value!r}")


__all__ = [
    "OPERATOR_KEY", "OPERATOR_PERMISSIONS", "ROLE_PERMISSIONS", "Operator", "Person", "Principal", "allowed",
    "authorize", "operator_principal", "permissions_of", "person_actor",
]
