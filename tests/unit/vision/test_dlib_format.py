"""The dlib network reader: real files parse, damaged ones fail with DlibFormatError."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from faceward.vision.errors import ModelIntegrityError
from faceward.vision.models import MANIFEST, ModelName, package_model_dir
from faceward.vision.onnx.convert import converted_model_path, verified_source
from faceward.vision.onnx.dlib_format import (
    Affine,
    Conv,
    DlibFormatError,
    Fc,
    LossMetric,
    LossMmod,
    _Reader,
    parse,
)


def _model_bytes(name: ModelName) -> bytes:
    return (package_model_dir() / MANIFEST[name].filename).read_bytes()


@pytest.fixture(scope="module")
def descriptor_bytes() -> bytes:
    return _model_bytes(ModelName.DESCRIPTOR)


def test_descriptor_file_parses(descriptor_bytes: bytes) -> None:
    net = parse(descriptor_bytes)
    assert isinstance(net.loss, LossMetric)
    assert (net.input.name, net.input.rows, net.input.cols) == ("input_rgb_image_sized", 150, 150)
    # The means dlib's face descriptor subtracts before dividing by 256.
    assert (net.input.avg_red, net.input.avg_green, net.input.avg_blue) == pytest.approx((122.782, 117.001, 104.298))
    first, last = net.layers[0], net.layers[-1]
    assert isinstance(first, Conv) and first.weights.shape == (32, 3, 7, 7) and first.stride_y == 2
    assert isinstance(last, Fc) and last.weights.shape == (256, 128) and last.bias is None
    assert all(layer.conv_mode for layer in net.layers if isinstance(layer, Affine))


def test_mmod_file_parses() -> None:
    net = parse(_model_bytes(ModelName.MMOD))
    assert isinstance(net.loss, LossMmod)
    assert [(w.width, w.height) for w in net.loss.windows] == [(80, 80)]
    assert net.input.name == "input_rgb_image_pyramid"


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x01", b"garbage that is not a network", bytes(range(256)) * 4])
def test_garbage_is_a_typed_error(data: bytes) -> None:
    with pytest.raises(DlibFormatError):
        parse(data)


def test_truncations_are_typed_errors(descriptor_bytes: bytes) -> None:
    cuts = [1, 2, 3, 17, 40, 300, 310, 400, 5000, len(descriptor_bytes) // 2, len(descriptor_bytes) - 1]
    for cut in cuts:
        with pytest.raises(DlibFormatError):
            parse(descriptor_bytes[:cut])


def test_trailing_bytes_are_refused(descriptor_bytes: bytes) -> None:
    with pytest.raises(DlibFormatError, match="trailing"):
        parse(descriptor_bytes + b"\x00")


def test_corrupted_headers_never_crash(descriptor_bytes: bytes) -> None:
    """Byte flips in the structural prefix either still parse or raise DlibFormatError, nothing else."""
    rng = random.Random(4)
    head = 0x400  # versions, input layer and the first layers' headers live here
    for _ in range(50):
        data = bytearray(descriptor_bytes)
        data[rng.randrange(head)] = rng.randrange(256)
        try:
            parse(bytes(data))
        except DlibFormatError:
            pass


def test_float_exponent_overflow_is_typed() -> None:
    # mantissa 1, exponent 32767: finite in dlib's encoding, far beyond any C++ float.
    with pytest.raises(DlibFormatError, match="out of range"):
        _Reader(b"\x01\x01\x02\xff\x7f").float_("x")
    with pytest.raises(DlibFormatError, match="out of range"):
        _Reader(b"\x01\x01\x02\x00\x01").float32("x")


@pytest.mark.parametrize("kind", ["descriptor", "mmod"])
def test_unpinned_model_is_refused(kind: str, tmp_path: Path) -> None:
    name = ModelName.DESCRIPTOR if kind == "descriptor" else ModelName.MMOD
    forged = tmp_path / "forged.dat"
    data = bytearray(_model_bytes(name))
    data[-1] ^= 0x01  # one weight bit: the file still parses, but it is not the pinned model
    forged.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        verified_source(kind, forged)  # type: ignore[arg-type]
    with pytest.raises(ModelIntegrityError):
        converted_model_path(kind, tmp_path / "cache", source=forged)  # type: ignore[arg-type]
    assert not any((tmp_path / "cache").glob("*.onnx"))


def test_conversion_is_cached_and_reproducible(tmp_path: Path) -> None:
    first = converted_model_path("descriptor", tmp_path / "a")
    again = converted_model_path("descriptor", tmp_path / "a")
    other = converted_model_path("descriptor", tmp_path / "b")
    assert first == again and first.stat().st_mtime_ns == again.stat().st_mtime_ns
    assert first.read_bytes() == other.read_bytes()
    assert MANIFEST[ModelName.DESCRIPTOR].sha256[:16] in first.name


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    path = converted_model_path("descriptor", tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[:1000])
    assert converted_model_path("descriptor", tmp_path).read_bytes() == good


def test_topology_mismatch_is_refused(descriptor_bytes: bytes) -> None:
    from faceward.vision.onnx.convert import descriptor_onnx, mmod_onnx

    with pytest.raises(DlibFormatError):
        descriptor_onnx(parse(_model_bytes(ModelName.MMOD)))
    with pytest.raises(DlibFormatError):
        mmod_onnx(parse(descriptor_bytes))
