"""The routes under ``/v1``, ``/healthz`` and the web console's ``/console``. Each route translates
HTTP to one :class:`~faceward.services.operations.Operations` call and back; none checks a permission."""

from faceward.api.routes import (
    console, health, keys, matching, migration, observability, oversight, review, signin, subjects,
)

ROUTERS = (
    health.router, observability.router, keys.router, subjects.router, matching.router, oversight.router, review.router, signin.router,
    signin.browser, migration.router, console.router,
)

__all__ = ["ROUTERS"]
