"""The gallery store: the single source of truth; indexes are derived from it."""

from faceward.store.errors import Conflict, NotFound, StoreError, StoreUnavailable
from faceward.store.records import FaceRecord, SubjectRecord, TenantRecord
from faceward.store.sql import SqlStore, make_engine

__all__ = [
    "Conflict", "FaceRecord", "NotFound", "SqlStore", "StoreError", "StoreUnavailable", "SubjectRecord",
    "TenantRecord", "make_engine",
]
