"""Vector indexes behind one contract; the store is the truth, an index is derived."""

from faceward.index.base import Labels, VectorIndex, Vectors
from faceward.index.exact import ExactIndex

__all__ = ["ExactIndex", "Labels", "VectorIndex", "Vectors"]
