"""How :class:`~faceward.index.ann.AnnIndex` makes its short list: the quantisation, the knobs, the coder.

The short list comes from compressed copies of the vectors (4-bit PQ codes scanned whole, or an
HNSW graph over i8/f16 copies); the exact float32 re-rank in :mod:`faceward.index.ann` orders it.
The knobs' values are measured in docs/decisions/005-vector-index.md and 009-pq-fast-scan.md.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from faceward.index.base import IndexError_

MIN_FIT = 256
"""Fewer rows than this fit no useful centre; the coder then quantises x itself."""


class Quantisation(str, enum.Enum):
    """Scalar type of the vectors inside the graph (the re-rank is always float32)."""

    PQ4 = "pq4"  # no graph: 32 B/face of 4-bit PQ codes, all scanned (faceward.index.pq); the default
    I8 = "i8"  # HNSW over 128 B/face
    F16 = "f16"  # HNSW over 256 B/face: for when the short list must be shorter


@dataclass(frozen=True)
class AnnParams:
    """Tuning knobs (measured in docs/decisions/005-vector-index.md).

    ``connectivity`` is HNSW's M (fixed at build), ``expansion_add`` its
    efConstruction, ``expansion_search`` its ef (raised to the short-list length
    when that is longer). ``rerank_factor * k`` candidates, at least
    ``min_candidates``, are re-scored exactly.

    Why ef is large: dlib descriptors share a strong common direction (any two
    faces score about 0.83 +- 0.03), so the ten nearest of a million sit in a
    thin shell and the beam must be wide. On a 1M lfw-like gallery, recall@10
    against exact search was 0.86 / 0.94 / 0.977 / 0.991 at ef 256 / 512 / 1024 /
    2048; the default takes the recall (a missed mate is the costly error of a
    face search) over the latency (about 2x that of ef 1024). M=24 would reach
    the same recall at about half the ef but costs 64 more bytes a face.
    """

    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 2048
    quantisation: Quantisation = Quantisation.PQ4
    rerank_factor: int = 10
    shortlist: int = 1024  # pq4: codes re-ranked exactly per query (at least rerank_factor x k)
    min_candidates: int = 100
    exact_below: int = 4096
    threads: int = 0  # 0: all cores

    def __post_init__(self) -> None:
        for name in ("connectivity", "expansion_add", "expansion_search", "rerank_factor", "min_candidates", "shortlist"):
            if int(getattr(self, name)) < 1:
                raise IndexError_(f"AnnIndex {name} must be at least 1, got {getattr(self, name)}")
        if self.exact_below < 0 or self.threads < 0:
            raise IndexError_("AnnIndex exact_below and threads must not be negative")
        object.__setattr__(self, "quantisation", Quantisation(self.quantisation))

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["quantisation"] = self.quantisation.value
        return values


@dataclass(frozen=True)
class GraphCoder:
    """How vectors enter the graph: ``(x - centre) * scale``, rounded to i8 (or cast to f16).

    ``scale`` maps the largest centred component seen at fit time to 1.0, i.e.
    to +-127; later outliers are clipped, which can only cost a candidate, never
    a wrong score (the re-rank is float32).
    """

    centre: NDArray[np.float32]
    scale: float
    quantisation: Quantisation

    @classmethod
    def fit(cls, sample: NDArray[np.float32], quantisation: Quantisation) -> GraphCoder:
        if len(sample) < MIN_FIT:
            return cls(np.zeros(sample.shape[1], dtype=np.float32), 1.0, quantisation)
        centre = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
        spread = float(np.abs(sample - centre).max())
        return cls(centre, 1.0 / max(spread, 1e-6), quantisation)

    def encode(self, vectors: NDArray[np.float32]) -> NDArray[Any]:
        if self.quantisation is Quantisation.PQ4:
            return np.ascontiguousarray(vectors - self.centre, dtype=np.float32)  # the table quantises itself
        centred = (vectors - self.centre) * np.float32(self.scale)
        if self.quantisation is Quantisation.I8:
            # Handing USearch int8 keeps its own conversion (which renormalises) out of the way.
            return cast(NDArray[np.int8], np.clip(np.rint(centred * 127.0), -127, 127).astype(np.int8))
        return centred.astype(np.float16)


__all__ = ["MIN_FIT", "AnnParams", "GraphCoder", "Quantisation"]
