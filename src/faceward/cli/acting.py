"""The CLI as a client of the use cases: one service graph, and the operator as the tenant's principal.

Every gallery command builds the same graph as ``faceward serve``
(:func:`faceward.wiring.build_services`) and acts through
:class:`~faceward.services.operations.Operations` as the host's operator of the
tenant it names: authorized, rate limited, counted and audited in that tenant's
chain (actor ``operator``, with the system user and the command) like any API key.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceward.bootstrap import init_home
from faceward.cli.common import local_tenant_file
from faceward.security.operator_log import host_user
from faceward.security.policy import Operator, Principal, operator_principal
from faceward.services.operations import Operations
from faceward.settings import Settings
from faceward.wiring import Services, build_services

SOURCE = "cli"


@dataclass(frozen=True)
class Acting:
    """The service graph and the operator principal one command acts as."""

    services: Services
    principal: Principal
    source: str = SOURCE

    @property
    def operations(self) -> Operations:
        return self.services.operations

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id


def open_services(s: Settings, command: str) -> Services:
    """The graph for a CLI command (analysis in this process); the embedded default home is created on first use."""
    if s.database_url is None:
        init_home(s)
    return build_services(s, analysis_workers=False, command=command)


def local_tenant(services: Services, s: Settings) -> str:
    """The home's local tenant, created (an operator act) on first use."""
    marker = local_tenant_file(s)
    if marker.exists():
        return marker.read_text().strip()
    tenant_id, _ = services.accounts.create_tenant("local")
    marker.write_text(tenant_id + "\n")
    return tenant_id


def acting(s: Settings, command: str, tenant: str | None) -> Acting:
    """Act as the operator of ``tenant`` (default: the home's local tenant) for ``command``."""
    services = open_services(s, command)
    tenant_id = tenant or local_tenant(services, s)
    return Acting(services, operator_principal(tenant_id, Operator(host_user(), command)))


__all__ = ["Acting", "SOURCE", "acting", "local_tenant", "open_services"]
