"""The REST API: ``create_app(settings)`` and nothing else at this level."""

from faceward.api.app import create_app

__all__ = ["create_app"]
