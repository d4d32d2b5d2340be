"""Protected templates (ISO/IEC 24745): the tenant's secret orthonormal transform.

Whatever faceward hands to a vector engine outside its process (Milvus) is a
template rotated by a secret orthonormal matrix ``Q`` derived here from the
tenant data key: ``<Qa, Qb> = <a, b>``, so every score, calibration and
threshold is unchanged, while the engine's vectors are useless without the
tenant key and unlinkable across tenants (two tenants' matrices are
independent random rotations). Decision 016 says what this protects against
and what it does not.

The matrix is a pure function of ``(tenant key, tenant id, dim, generation)``:
HKDF-SHA256 turns the key into a transform key, AES-256-CTR turns that into a
stream of uniform numbers, Box-Muller into Gaussians, and a QR decomposition
(signs fixed, so the result is Haar-distributed) into ``Q``. Only standard,
versioned primitives are used, never numpy's generators, whose streams may
change between releases and would silently re-key every engine. ``generation``
renews the transform without a new tenant key (then the engine is rebuilt from
the store's sealed originals).
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from numpy.typing import NDArray

from faceward.security.crypto import KEY_BYTES, aad

_INFO = "template-transform-v1"


def template_transform_key(tenant_key: bytes, tenant_id: str, generation: int = 0) -> bytes:
    """The 256-bit key of the tenant's transform: HKDF of the tenant key, bound to tenant and generation."""
    if generation < 0:
        raise ValueError("generation must be >= 0")
    info = aad(tenant_id, _INFO, str(generation))
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(tenant_key)


def template_transform(tenant_key: bytes, tenant_id: str, dim: int, generation: int = 0) -> NDArray[np.float32]:
    """The tenant's secret ``dim x dim`` orthonormal matrix (rows and columns unit and orthogonal)."""
    if dim < 1:
        raise ValueError(f"dimension must be positive, got {dim}")
    key = template_transform_key(tenant_key, tenant_id, generation)
    count = dim * dim
    encryptor = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor()
    stream = encryptor.update(b"\0" * (16 * count)) + encryptor.finalize()  # two 64-bit words per pair of normals
    words = np.frombuffer(stream, dtype="<u8").reshape(count, 2)
    u = ((words >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)  # uniform in (0, 1), never 0
    gaussian = np.sqrt(-2.0 * np.log(u[:, 0])) * np.cos(2.0 * np.pi * u[:, 1])
    q, r = np.linalg.qr(gaussian.reshape(dim, dim))
    q *= np.sign(np.diag(r))  # Haar: without the sign fix QR's convention biases the distribution
    return np.ascontiguousarray(q, dtype=np.float32)


__all__ = ["template_transform", "template_transform_key"]
