"""Index snapshots: an in-process index saved to one file, sealed with the tenant's data key.

A snapshot lets a restart skip rebuilding the index (minutes at a million
faces): load it, then replay the store's faces with ``seq > last_seq``. It
holds every descriptor of the tenant, so it is sealed like any other
biometric data, and bound to the tenant: a snapshot opened with another key
or for another tenant fails (:class:`SnapshotError`).

File layout::

    b"FWIXSNP1" | snapshot id (16 random bytes) | chunk* (u32 length | sealed chunk)

The plaintext (a length-prefixed JSON manifest, then the raw sections it
lists) is cut into 16 MiB chunks, each sealed with AES-256-GCM under
``aad(tenant, "index-snapshot", snapshot id, chunk number, "more"|"final")``,
so chunks cannot be reordered, dropped, cut short or spliced in from another
snapshot, and nothing larger than a chunk is ever held twice in memory.

Only exact and ANN indexes are snapshotted: Milvus persists itself.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from faceward.durability import fsync_dir
from faceward.index.ann import AnnIndex, AnnParams, GraphCoder, GraphState, Quantisation
from faceward.index.base import IndexError_, VectorIndex
from faceward.index.exact import ExactIndex
from faceward.security.sealed_files import open_chunk, seal_chunk
from faceward.security.errors import SealError

MAGIC = b"FWIXSNP1"
FORMAT = 1
CHUNK = 16 * 1024 * 1024
_ID_BYTES = 16
_LENGTH = struct.Struct("<I")
_SEAL_OVERHEAD = 1 + 12 + 16  # version byte, nonce, GCM tag (security.crypto)


class SnapshotError(IndexError_):
    """A snapshot cannot be written or read: wrong key or tenant, tampering, truncation, or an unknown format."""


# -- what goes in -------------------------------------------------------------


def _sections(index: VectorIndex) -> tuple[dict[str, Any], list[tuple[str, bytes | memoryview]]]:
    if isinstance(index, AnnIndex):
        labels, vectors = index.items()
        state = index.graph_state()
        manifest: dict[str, Any] = {"kind": "ann", "params": index.params.as_dict()}
        parts: list[tuple[str, bytes | memoryview]] = [
            ("labels", memoryview(labels).cast("B")),
            ("vectors", memoryview(vectors).cast("B")),
        ]
        if state is not None:
            manifest["coder"] = {"scale": state.coder.scale, "quantisation": state.coder.quantisation.value}
            parts.append(("centre", memoryview(np.ascontiguousarray(state.coder.centre, np.float32)).cast("B")))
            parts.append(("graph", memoryview(state.graph).cast("B")))
    elif isinstance(index, ExactIndex):
        labels, vectors = index.items()
        manifest = {"kind": "exact"}
        parts = [("labels", memoryview(labels).cast("B")), ("vectors", memoryview(vectors).cast("B"))]
    else:
        raise SnapshotError(f"{type(index).__name__} cannot be snapshotted (Milvus persists itself)")
    manifest.update(format=FORMAT, dim=index.dim, count=len(labels))
    manifest["sections"] = [{"name": name, "bytes": len(data)} for name, data in parts]
    return manifest, parts


# -- sealed chunk stream ------------------------------------------------------


def _context(tenant_id: str, snapshot_id: bytes) -> tuple[str, ...]:
    return (tenant_id, "index-snapshot", snapshot_id.hex())


class _SealedWriter:
    def __init__(self, out: BinaryIO, key: bytes, tenant_id: str, snapshot_id: bytes) -> None:
        self._out, self._key, self._tenant, self._id = out, key, tenant_id, snapshot_id
        self._buffer = bytearray()
        self._number = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while len(view):
            room = CHUNK - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) == CHUNK:
                self._emit(final=False)

    def close(self) -> None:
        self._emit(final=True)

    def _emit(self, *, final: bool) -> None:
        sealed = seal_chunk(self._key, _context(self._tenant, self._id), self._number, final, bytes(self._buffer))
        self._out.write(_LENGTH.pack(len(sealed)))
        self._out.write(sealed)
        self._buffer = bytearray()
        self._number += 1


class _SealedReader:
    def __init__(self, source: BinaryIO, key: bytes, tenant_id: str, snapshot_id: bytes) -> None:
        self._chunks = self._open_chunks(source, key, tenant_id, snapshot_id)
        self._buffer = memoryview(b"")

    @staticmethod
    def _open_chunks(source: BinaryIO, key: bytes, tenant_id: str, snapshot_id: bytes) -> Iterator[bytes]:
        number = 0
        while True:
            head = source.read(_LENGTH.size)
            if len(head) < _LENGTH.size:
                raise SnapshotError("snapshot is truncated")
            (length,) = _LENGTH.unpack(head)
            if length > CHUNK + 64:
                raise SnapshotError("snapshot is malformed")
            sealed = source.read(length)
            if len(sealed) < length:
                raise SnapshotError("snapshot is truncated")
            # Only the last chunk is short (the writer flushes full chunks as "more"),
            # and the AAD makes that claim checkable: a cut-short file cannot pass.
            final = length - _SEAL_OVERHEAD < CHUNK
            try:
                plain = open_chunk(key, _context(tenant_id, snapshot_id), number, final, sealed)
            except SealError:
                raise SnapshotError("snapshot failed authentication: wrong key or tenant, or tampered") from None
            yield plain
            number += 1
            if final:
                if source.read(1):
                    raise SnapshotError("snapshot has data after its final chunk")
                return

    def read(self, size: int) -> bytes:
        buffer = bytearray(size)
        self.readinto(memoryview(buffer))
        return bytes(buffer)

    def readinto(self, target: memoryview) -> None:
        """Fill ``target`` exactly from the decrypted stream."""
        filled, want = 0, len(target)
        while filled < want:
            if not len(self._buffer):
                chunk = next(self._chunks, None)
                if chunk is None:
                    raise SnapshotError("snapshot ended before its sections did")
                self._buffer = memoryview(chunk)
            n = min(want - filled, len(self._buffer))
            target[filled : filled + n] = self._buffer[:n]
            self._buffer = self._buffer[n:]
            filled += n

    def finish(self) -> None:
        if len(self._buffer) or next(self._chunks, None):
            raise SnapshotError("snapshot has more data than its manifest lists")


# -- public verbs -------------------------------------------------------------


def save_snapshot(index: VectorIndex, path: Path | str, key: bytes, tenant_id: str, last_seq: int) -> None:
    """Write ``index`` to ``path`` atomically (temp file, fsync, rename), mode 0600, sealed with ``key``.

    ``last_seq`` is the store's highest face seq the index reflects; it comes
    back from :func:`load_snapshot` so the caller replays only newer faces.
    An ANN index with dead rows is saved without its graph (the graph still
    holds erased faces' i8 copies) and is rebuilt on load.
    """
    path = Path(path)
    manifest, parts = _sections(index)
    manifest["last_seq"] = int(last_seq)
    manifest["tenant_id"] = tenant_id
    header = json.dumps(manifest, sort_keys=True).encode()
    snapshot_id = os.urandom(_ID_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + snapshot_id)
            writer = _SealedWriter(out, key, tenant_id, snapshot_id)
            writer.write(_LENGTH.pack(len(header)) + header)
            for _, data in parts:
                writer.write(data)
            writer.close()
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SnapshotError(f"cannot write snapshot {path}: {exc.strerror or exc}") from exc
    fsync_dir(path.parent)


def load_snapshot(
    path: Path | str, key: bytes, tenant_id: str, *, vectors_path: Path | str | None = None
) -> tuple[VectorIndex, int] | None:
    """The index and ``last_seq`` saved at ``path``; None if there is no snapshot there.

    Raises :class:`SnapshotError` if the file is not a snapshot of this
    tenant under this key (the caller then rebuilds from the store and says
    why). ``vectors_path`` puts a restored ANN index's float32 rows in a
    memory-mapped file, as :func:`make_index`'s ``vectors_dir`` does.
    """
    path = Path(path)
    try:
        source = path.open("rb")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror or exc}") from exc
    with source:
        head = source.read(len(MAGIC) + _ID_BYTES)
        if len(head) < len(MAGIC) + _ID_BYTES or head[: len(MAGIC)] != MAGIC:
            raise SnapshotError(f"{path} is not a faceward index snapshot")
        reader = _SealedReader(source, key, tenant_id, head[len(MAGIC) :])
        (length,) = _LENGTH.unpack(reader.read(_LENGTH.size))
        try:
            manifest = json.loads(reader.read(length))
        except ValueError as exc:
            raise SnapshotError("snapshot manifest is unreadable") from exc
        if manifest.get("format") != FORMAT:
            raise SnapshotError(f"snapshot format {manifest.get('format')} is not {FORMAT}")
        if manifest.get("tenant_id") != tenant_id:  # the AAD already binds it; this guards a mis-sealed writer
            raise SnapshotError("snapshot belongs to another tenant")
        sections = _read_sections(reader, manifest)
        reader.finish()
    return _rebuild(manifest, sections, vectors_path), int(manifest["last_seq"])


def _read_sections(reader: _SealedReader, manifest: dict[str, Any]) -> dict[str, bytearray]:
    dim, count = int(manifest["dim"]), int(manifest["count"])
    expected = {"labels": count * 8, "vectors": count * dim * 4}
    sections: dict[str, bytearray] = {}
    for entry in manifest["sections"]:
        name, size = str(entry["name"]), int(entry["bytes"])
        if name in expected and expected[name] != size:
            raise SnapshotError(f"snapshot section {name} has {size} bytes, expected {expected[name]}")
        buffer = bytearray(size)
        reader.readinto(memoryview(buffer))
        sections[name] = buffer
    if not {"labels", "vectors"} <= sections.keys():
        raise SnapshotError("snapshot lacks its labels or vectors")
    return sections


def _rebuild(manifest: dict[str, Any], sections: dict[str, bytearray], vectors_path: Path | str | None) -> VectorIndex:
    dim = int(manifest["dim"])
    labels = np.frombuffer(sections.pop("labels"), dtype=np.int64)
    vectors = np.frombuffer(sections.pop("vectors"), dtype=np.float32).reshape(-1, dim)
    if manifest["kind"] == "exact":
        exact = ExactIndex(dim)
        exact.add(labels, vectors)
        return exact
    if manifest["kind"] == "ann":
        params = AnnParams(**manifest["params"])
        graph, centre = sections.pop("graph", None), sections.pop("centre", None)
        state = None
        if graph is not None and centre is not None and "coder" in manifest:
            coder = GraphCoder(
                np.frombuffer(centre, dtype=np.float32).copy(),
                float(manifest["coder"]["scale"]),
                Quantisation(manifest["coder"]["quantisation"]),
            )
            state = GraphState(graph, coder)
        index = AnnIndex.restore(dim, labels, vectors, params, state, vectors_path)
        if index.dim != dim:
            raise SnapshotError(f"snapshot index is {index.dim}-d, manifest says {dim}-d")
        return index
    raise SnapshotError(f"snapshot holds an unknown index kind {manifest['kind']!r}")


__all__ = ["SnapshotError", "load_snapshot", "save_snapshot"]
