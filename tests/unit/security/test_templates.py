"""The tenant's template transform: orthonormal, a pure function of key, tenant and generation."""

from __future__ import annotations

import os

import numpy as np
import pytest

from faceward.security.templates import template_transform


def test_orthonormal_deterministic_and_score_preserving() -> None:
    key = os.urandom(32)
    q = template_transform(key, "acme", 128)
    assert q.dtype == np.float32 and q.shape == (128, 128)
    np.testing.assert_allclose(q @ q.T, np.eye(128), atol=2e-6)
    np.testing.assert_array_equal(q, template_transform(key, "acme", 128))
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 128)).astype(np.float32)
    # Float32 rounding is relative to the vectors' norms, not to their inner product (which can be near 0).
    scale = float(np.linalg.norm(a) * np.linalg.norm(b))
    assert float((q @ a) @ (q @ b)) == pytest.approx(float(a @ b), abs=1e-5 * scale)


def test_other_tenant_key_or_generation_gives_an_unrelated_rotation() -> None:
    key = os.urandom(32)
    base = template_transform(key, "acme", 128)
    x = np.random.default_rng(1).standard_normal(128).astype(np.float32)
    x /= np.linalg.norm(x)
    for other in (template_transform(key, "globex", 128), template_transform(os.urandom(32), "acme", 128),
                  template_transform(key, "acme", 128, generation=1)):
        assert abs(float((base @ x) @ (other @ x))) < 0.4  # ~N(0, 1/128): independent rotations
        assert np.abs(base - other).max() > 0.1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        template_transform(os.urandom(32), "acme", 0)
    with pytest.raises(ValueError):
        template_transform(os.urandom(32), "acme", 8, generation=-1)
