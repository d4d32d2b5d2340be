"""The routes under ``/v1`` and ``/healthz``. Each route translates HTTP to one
:class:`~faceward.services.operations.Operations` call and back; none checks a permission."""

from faceward.api.routes import health, keys, matching, oversight, subjects

ROUTERS = (health.router, keys.router, subjects.router, matching.router, oversight.router)

__all__ = ["ROUTERS"]
