"""faceward: consent-first, multi-tenant face search."""

__version__ = "0.1.0"
