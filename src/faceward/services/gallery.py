"""The gallery's use cases wired together over one store, vault, analysis and set of indexes.

Each use case is its own module and takes its collaborators as constructor
arguments: :mod:`~faceward.services.tenancy` (tenants, the gallery's model),
:mod:`~faceward.services.subjects` (consent-recorded subjects, erasure),
:mod:`~faceward.services.enrollment` (the quality gate, sealed templates),
:mod:`~faceward.services.matching` (search and verify) and
:mod:`~faceward.services.migration` (moving a gallery to another model).
:class:`GalleryService` builds them once and answers the verbs the callers
use; keys and sealing are the :class:`~faceward.security.vault.TenantVault`'s alone.

Models: every template records the id of the model that made it, and a
tenant's settings record its gallery's model (``model_id``, and its
``embedding_size``) at the first enrollment. Search, verify and enrollment
refuse an engine that makes another model's templates (:class:`ModelMismatch`);
a gallery changes model only through a migration.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from faceward.index.tenants import SearchIndexes
from faceward.scoring import Scoring, Uncalibrated
from faceward.security.kms import TenantKeyWrapper
from faceward.errors import NotFound
from faceward.security.vault import TenantVault
from faceward.services.analysis import Analysis
from faceward.services.consent import Consent
from faceward.services.enrollment import ChipSink, Enrollment
from faceward.services.ids import new_id, utcnow
from faceward.services.matching import MAX_K, Matching
from faceward.services.migration import Migration
from faceward.services.subjects import Subjects
from faceward.services.templates import TemplateReader
from faceward.services.tenancy import MIGRATION_KEY, ModelMismatch, TenantSuspended, Tenants, gallery_dim, gallery_model
from faceward.services.views import FaceView, MigrationReport, SearchResult, SubjectView, VerifyResult
from faceward.settings import IndexBackend, Settings
from faceward.store import SqlStore, TenantRecord
from faceward.store.profile import TRANSFORM_GENERATION
from faceward.store.ledger import ErasureLedger
from faceward.vision import FaceEngine
from faceward.vision.remote import RemoteEngine
from faceward.vision.types import Face, Quality




class GalleryService:
    def __init__(
        self,
        store: SqlStore,
        keyring: TenantKeyWrapper,
        settings: Settings,
        *,
        engine: FaceEngine | None = None,
        clock: Callable[[], datetime] = utcnow,
        index_factory: Callable[[str], Any] | None = None,
        ledger: ErasureLedger | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.ledger = ledger or ErasureLedger(settings.erasure_ledger_file, keyring)
        self.vault = TenantVault(keyring, store)
        self.analysis = Analysis(settings, engine)
        self.templates = TemplateReader(store, self.vault, lambda: self.analysis.embedding_size)
        self.index_factory: Callable[[str], Any] = index_factory or self._configured_index
        self.indexes = SearchIndexes(
            store, self.templates.open, self.index_factory, self._purge_engine,
            # Only a protected engine's rows depend on the generation (decision 016); it is read from the
            # tenant row, which a search's unit of work already holds.
            generation=self._transform_generation if settings.index_backend is IndexBackend.MILVUS else None,
        )
        self.tenants = Tenants(store, self.vault, clock)
        self.subjects = Subjects(store, self.vault, self.tenants, self.indexes, self.ledger, clock)
        self.enrollment = Enrollment(store, self.vault, self.tenants, self.analysis, clock)
        self.matching = Matching(
            store, self.vault, self.tenants, self.subjects, self.analysis, self.indexes, settings.target_fmr
        )
        self.migration = Migration(store, self.tenants, self.subjects, self.enrollment, self.analysis, self.indexes, clock)

    def _configured_index(self, tenant_id: str) -> Any:
        """A new index of the configured backend (``FACEWARD_INDEX_BACKEND``) sized for this tenant's gallery."""
        # Imported here, not at the top: the factory imports usearch, and loading usearch before
        # onnxruntime makes onnxruntime's import segfault (usearch 2.26.6, onnxruntime 1.32.0), which
        # took down `faceward enroll` and `faceward serve` whenever the face engine loaded after this module.
        from faceward.index.factory import make_index
        from faceward.index.protected import ProtectedIndex

        dim = self.gallery_dim(tenant_id)
        if self.settings.index_backend is not IndexBackend.MILVUS:
            return make_index(self.settings.index_backend, dim=dim, tenant_id=tenant_id, options=self.settings.index_options)
        # What leaves the process is a protected template (decision 016): rotated by the tenant's secret matrix,
        # in the collection of that matrix's generation.
        generation = self._transform_generation(tenant_id)
        index = make_index(IndexBackend.MILVUS, dim=dim, tenant_id=tenant_id, options=self.settings.index_options,
                           generation=generation)
        return ProtectedIndex(index, self.vault.template_transform(tenant_id, dim, generation))

    def _transform_generation(self, tenant_id: str) -> int:
        return self.store.get_tenant(tenant_id).profile.transform_generation

    def _purge_engine(self, tenant_id: str) -> None:
        """Delete a tenant's vectors from a persistent engine (Milvus) this process has not opened."""
        try:
            generation = self._transform_generation(tenant_id)
        except NotFound:
            generation = 0
        self.purge_engine(tenant_id, generation)

    def purge_engine(self, tenant_id: str, generation: int) -> None:
        """Drop the tenant's Milvus collection of template-transform ``generation`` (nothing for other backends)."""
        if self.settings.index_backend is not IndexBackend.MILVUS:
            return
        from faceward.index.factory import make_index

        index: Any = make_index(IndexBackend.MILVUS, tenant_id=tenant_id, options=self.settings.index_options,
                                generation=generation)
        index.drop()
        index.close()

    # -- wiring the server changes after construction ------------------------------

    @property
    def keyring(self) -> TenantKeyWrapper:
        return self.vault.keyring

    @keyring.setter
    def keyring(self, keyring: TenantKeyWrapper) -> None:
        self.vault.use_keyring(keyring)

    @property
    def remote(self) -> RemoteEngine | None:
        return self.analysis.remote

    @remote.setter
    def remote(self, remote: RemoteEngine | None) -> None:
        self.analysis.remote = remote

    @property
    def chip_sink(self) -> ChipSink | None:
        return self.enrollment.chip_sink

    @chip_sink.setter
    def chip_sink(self, sink: ChipSink | None) -> None:
        self.enrollment.chip_sink = sink

    # -- the engine ------------------------------------------------------------------

    @property
    def engine(self) -> FaceEngine:
        return self.analysis.engine

    @property
    def loaded_engine(self) -> FaceEngine | None:
        """The in-process engine if one was made (never creates it: the metrics and readiness peek)."""
        return self.analysis.loaded_engine

    @property
    def limits(self) -> Any:
        return self.analysis.limits

    @property
    def model_id(self) -> str:
        return self.analysis.model_id

    @property
    def embedding_size(self) -> int:
        return self.analysis.embedding_size

    @property
    def calibration(self) -> Scoring:
        return self.analysis.scoring

    def gallery_model(self, tenant_id: str) -> str | None:
        return gallery_model(self.store.get_tenant(tenant_id))

    def gallery_dim(self, tenant_id: str) -> int:
        return gallery_dim(self.store.get_tenant(tenant_id), self.analysis.embedding_size)

    def forget_keys(self) -> None:
        self.vault.forget()

    # -- tenants and subjects --------------------------------------------------------

    def create_tenant(self, name: str) -> str:
        return self.tenants.create(name)

    def tenant_name(self, record: TenantRecord) -> str:
        return self.tenants.name(record)

    def active_tenant(self, tenant_id: str) -> TenantRecord:
        return self.tenants.active(tenant_id)

    def external_ref(self, tenant_id: str, reference: str) -> str:
        return self.vault.external_ref(tenant_id, reference)

    def subject_for_ref(self, tenant_id: str, reference: str) -> SubjectView | None:
        return self.subjects.for_ref(tenant_id, reference)

    def create_subject(
        self, tenant_id: str, display_name: str, consent: Consent, *, reference: str | None = None
    ) -> SubjectView:
        return self.subjects.create(tenant_id, display_name, consent, reference=reference)

    def get_subject(self, tenant_id: str, subject_id: str) -> SubjectView:
        return self.subjects.get(tenant_id, subject_id)

    def list_subjects(self, tenant_id: str, *, limit: int = 50, offset: int = 0) -> list[SubjectView]:
        return self.subjects.list(tenant_id, limit=limit, offset=offset)

    def delete_subject(self, tenant_id: str, subject_id: str) -> list[str]:
        return self.subjects.delete(tenant_id, subject_id)

    # -- enrollment, migration, matching ---------------------------------------------

    def detect(self, tenant_id: str, image: bytes) -> tuple[list[Face], tuple[int, int], str]:
        """The faces in ``image``, largest first (the order :meth:`search`'s ``face`` counts in), with boxes,
        chips and quality but no descriptors; the upright image's ``(width, height)``; its SHA-256. Stores nothing."""
        self.tenants.active(tenant_id)
        return self.analysis.detect(image, tenant_id)

    def enroll(self, tenant_id: str, subject_id: str, image: bytes) -> FaceView:
        return self.enrollment.enroll(tenant_id, subject_id, image)

    def admit(
        self, tenant_id: str, subject_id: str, descriptor: np.ndarray, quality: Quality, box: dict[str, int],
        digest: str, faces_in_image: int, *, chip: np.ndarray | None = None,
    ) -> FaceView:
        return self.enrollment.admit(tenant_id, subject_id, descriptor, quality, box, digest, faces_in_image, chip=chip)

    def begin_migration(self, tenant_id: str) -> str:
        return self.migration.begin(tenant_id)

    def admit_migrated(
        self, tenant_id: str, subject_id: str, descriptor: np.ndarray, quality: Quality, box: dict[str, int],
        digest: str, faces_in_image: int,
    ) -> FaceView:
        return self.migration.admit(tenant_id, subject_id, descriptor, quality, box, digest, faces_in_image)

    def migrate_image(self, tenant_id: str, subject_id: str, image: bytes) -> FaceView:
        return self.migration.admit_image(tenant_id, subject_id, image)

    def finish_migration(self, tenant_id: str, *, require_all: bool = False) -> MigrationReport:
        return self.migration.finish(tenant_id, require_all=require_all)

    def search(self, tenant_id: str, image: bytes, *, k: int = 10, face: int | None = None) -> SearchResult:
        return self.matching.search(tenant_id, image, k=k, face=face)

    def gallery_threshold(self, gallery_size: int, target_fpir: float) -> float:
        return self.matching.gallery_threshold(gallery_size, target_fpir)

    def verify_images(
        self, tenant_id: str, image_a: bytes, image_b: bytes, *, face_a: int | None = None, face_b: int | None = None
    ) -> VerifyResult:
        return self.matching.verify_images(tenant_id, image_a, image_b, face_a=face_a, face_b=face_b)

    def verify_subject(self, tenant_id: str, image: bytes, subject_id: str, *, face: int | None = None) -> VerifyResult:
        return self.matching.verify_subject(tenant_id, image, subject_id, face=face)


__all__ = [
    "MAX_K", "MIGRATION_KEY", "TRANSFORM_GENERATION", "GalleryService", "ModelMismatch", "TenantSuspended", "Uncalibrated", "new_id", "utcnow",
]
