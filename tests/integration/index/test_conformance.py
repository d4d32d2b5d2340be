"""One contract suite for every VectorIndex backend: exact (the reference), protected (exact behind a tenant's rotation), ann (pq4 scan or USearch HNSW, + re-rank),
milvus (a real standalone server, started once per session) and milvus-lite.

The ANN index is built with ``exact_below=0`` so these small galleries go
through the HNSW graph and the re-rank, not the exact fallback, and with its
float32 rows memory-mapped, the configuration meant for large tenants.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from faceward.index.base import IndexError_, VectorIndex
from faceward.index.factory import make_index
from faceward.index.protected import ProtectedIndex
from faceward.security.templates import template_transform
from faceward.settings import IndexBackend

DIM = 128
MILVUS_LITE = importlib.util.find_spec("milvus_lite") is not None

Factory = Callable[[str], VectorIndex]


def unit(rows: NDArray[np.float64]) -> NDArray[np.float32]:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def brute_force(labels: NDArray[np.int64], vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int
                ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return labels[order], np.take_along_axis(scores, order, axis=1)


@pytest.fixture(params=["exact", "protected", "ann", "ann-hnsw", "milvus", "milvus-lite"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "milvus-lite" and not MILVUS_LITE:
        pytest.skip("milvus-lite is not importable: pip install 'pymilvus[milvus-lite]>=2.4'")
    return str(request.param)


@pytest.fixture
def factory(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Factory:
    """Builds the backend's index for a tenant; every tenant shares one Milvus file / one vectors dir."""
    made: list[VectorIndex] = []

    def make(tenant: str) -> VectorIndex:
        if backend == "exact":
            index = make_index(IndexBackend.EXACT, tenant_id=tenant)
        elif backend == "protected":  # the tenant's secret rotation in front of an index: same labels and scores
            transform = template_transform(bytes(range(32)), tenant, DIM)
            index = ProtectedIndex(make_index(IndexBackend.EXACT, tenant_id=tenant), transform)
        elif backend.startswith("ann"):
            options = {"exact_below": 0, "vectors_dir": str(tmp_path / "vectors"), "threads": 1}
            if backend == "ann-hnsw":
                options["quantisation"] = "i8"
            index = make_index(IndexBackend.ANN, tenant_id=tenant, options=options)
        elif backend == "milvus":
            # The session's server is shared: this test's collections get a prefix of their own.
            options = {"uri": request.getfixturevalue("milvus_uri"), "prefix": prefix}  # its default: SCANN
            index = make_index(IndexBackend.MILVUS, tenant_id=tenant, options=options)
        else:
            index = make_index(IndexBackend.MILVUS, tenant_id=tenant, options={"uri": str(tmp_path / "milvus.db")})
        made.append(index)
        return index

    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield make  # type: ignore[misc]
    for index in made:
        if backend == "milvus":
            index.drop()  # type: ignore[attr-defined]
        close = getattr(index, "close", None)
        if close is not None:
            close()


@pytest.fixture
def gallery() -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.float32]]:
    rng = np.random.default_rng(5)
    labels = rng.choice(2**40, size=300, replace=False).astype(np.int64)  # large, unordered seqs
    vectors = unit(rng.standard_normal((300, DIM)))
    near = vectors[rng.choice(300, 12, replace=False)] + 0.3 * rng.standard_normal((12, DIM))
    queries = np.concatenate([unit(near), unit(rng.standard_normal((8, DIM)))])
    return labels, vectors, queries


def test_search_matches_brute_force(factory: Factory, gallery: tuple) -> None:
    labels, vectors, queries = gallery
    index = factory("acme")
    index.add(labels[:150], vectors[:150])
    index.add(labels[150:], vectors[150:])
    assert len(index) == 300
    got_labels, got_scores = index.search(queries, 10)
    want_labels, want_scores = brute_force(labels, vectors, queries, 10)
    assert got_labels.shape == (20, 10) and got_labels.dtype == np.int64
    assert got_scores.shape == (20, 10) and got_scores.dtype == np.float32
    np.testing.assert_array_equal(got_labels, want_labels)
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)


def test_single_query_vector_is_one_row(factory: Factory, gallery: tuple) -> None:
    labels, vectors, _ = gallery
    index = factory("acme")
    index.add(labels[:20], vectors[:20])
    got, _ = index.search(vectors[3], 1)
    assert got.tolist() == [[labels[3]]]


def test_k_larger_than_size_pads(factory: Factory, gallery: tuple) -> None:
    labels, vectors, queries = gallery
    index = factory("acme")
    index.add(labels[:3], vectors[:3])
    got_labels, got_scores = index.search(queries[:2], 5)
    want_labels, want_scores = brute_force(labels[:3], vectors[:3], queries[:2], 3)
    np.testing.assert_array_equal(got_labels[:, :3], want_labels)
    np.testing.assert_allclose(got_scores[:, :3], want_scores, atol=1e-5)
    assert (got_labels[:, 3:] == -1).all()
    assert np.isneginf(got_scores[:, 3:]).all()


def test_empty_index(factory: Factory, gallery: tuple) -> None:
    _, _, queries = gallery
    index = factory("acme")
    assert len(index) == 0
    got_labels, got_scores = index.search(queries[:4], 3)
    assert got_labels.shape == (4, 3) and (got_labels == -1).all()
    assert np.isneginf(got_scores).all()


def test_removed_labels_are_never_returned(factory: Factory, gallery: tuple) -> None:
    labels, vectors, queries = gallery
    index = factory("acme")
    index.add(labels, vectors)
    best, _ = index.search(queries, 1)
    gone = set(best[:, 0].tolist()) | set(labels[::7].tolist())
    index.remove(gone)
    index.remove([123456789])  # unknown: a no-op
    assert len(index) == 300 - len(gone)
    got, _ = index.search(np.concatenate([queries, vectors[::7]]), 50)
    assert not gone & set(got.ravel().tolist())
    keep = ~np.isin(labels, list(gone))
    want, _ = brute_force(labels[keep], vectors[keep], queries, 10)
    np.testing.assert_array_equal(got[: len(queries), :10], want)


def test_re_add_replaces(factory: Factory, gallery: tuple) -> None:
    labels, vectors, _ = gallery
    index = factory("acme")
    index.add(labels[:50], vectors[:50])
    index.add(labels[:1], vectors[60:61])  # label 0 now carries vector 60
    assert len(index) == 50
    got, scores = index.search(vectors[60:61], 1)
    assert got[0, 0] == labels[0] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    got, _ = index.search(vectors[:1], 3)
    assert labels[0] not in got[0, :1]


def test_wrong_dimension_raises(factory: Factory, backend: str, gallery: tuple) -> None:
    labels, vectors, _ = gallery
    index = factory("acme")
    with pytest.raises(IndexError_, match="128"):
        index.add(labels[:2], vectors[:2, :64])
    index.add(labels[:2], vectors[:2])
    with pytest.raises(IndexError_, match="128"):
        index.search(np.zeros((3, 64), dtype=np.float32), 1)


def test_tenants_never_see_each_other(factory: Factory, gallery: tuple) -> None:
    labels, vectors, _ = gallery
    acme, globex = factory("acme"), factory("globex")
    acme.add(labels[:100], vectors[:100])
    globex.add(labels[:40], vectors[100:140])  # same labels, other faces
    assert len(acme) == 100 and len(globex) == 40
    got, scores = globex.search(vectors[:100], 1)
    assert scores.max() < 0.99  # none of acme's faces is in globex
    got, scores = acme.search(vectors[100:140], 1)
    assert scores.max() < 0.99
    got, _ = globex.search(vectors[100:140], 1)
    np.testing.assert_array_equal(got[:, 0], labels[:40])
    globex.remove(labels[:40].tolist())
    assert len(acme) == 100 and len(globex) == 0
    # A second handle on acme's (persistent) index sees acme's faces only.
    if hasattr(acme, "collection"):
        assert len(factory("acme")) == 100
