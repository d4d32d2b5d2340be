"""Convert dlib's face networks to ONNX graphs that compute the same numbers.

The dlib file holds weights and layer hyper-parameters; the wiring of tags and
skips lives in dlib's C++ type, so each supported network spells its topology
out here (mirroring the ``using`` aliases of dlib's examples) and the reader's
wrapper versions are checked against it before anything is emitted.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from faceward.vision.errors import ModelIntegrityError
from faceward.vision.models import MANIFEST, ModelName, package_model_dir, sha256_file
from faceward.vision.onnx.dlib_format import (
    Affine,
    AddPrev,
    Conv,
    DlibFormatError,
    DlibNet,
    Fc,
    Layer,
    LossMmod,
    Pool,
    Relu,
    read_file,
)

ModelKind = Literal["descriptor", "mmod"]

# Bump when the emitted graph changes, so stale cache entries are not reused.
CONVERTER_VERSION = 1
OPSET = 17
DESCRIPTOR_INPUT = "chips"
DESCRIPTOR_OUTPUT = "descriptors"
MMOD_INPUT = "pyramid"
MMOD_OUTPUT = "scores"

_MODEL_OF: dict[str, ModelName] = {"descriptor": ModelName.DESCRIPTOR, "mmod": ModelName.MMOD}


# --- topology ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _L:
    """A computational add_layer whose details must be of this type (``tag``: add_prev's tag id)."""

    kind: type
    tag: int = 0


@dataclass(frozen=True, slots=True)
class _Tag:
    id: int


@dataclass(frozen=True, slots=True)
class _Skip:
    id: int


_Token = _L | _Tag | _Skip


def _block() -> list[_Token]:
    # block<N,affine,stride> = affine<con<3x3,1>, relu<affine<con<3x3,stride>>>>>, top-down;
    # strides and widths come from the file.
    return [_L(Affine), _L(Conv), _L(Relu), _L(Affine), _L(Conv)]


def _ares() -> list[_Token]:
    # relu<add_prev1<block<1, tag1<SUBNET>>>>
    return [_L(Relu), _L(AddPrev, 1), *_block(), _Tag(1)]


def _ares_down() -> list[_Token]:
    # relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<2, tag1<SUBNET>>>>>>>>
    return [_L(Relu), _L(AddPrev, 2), _L(Pool), _Skip(1), _Tag(2), *_block(), _Tag(1)]


def descriptor_topology() -> list[_Token]:
    """dlib's ``anet_type`` (dnn_face_recognition_ex.cpp), top-down, input excluded."""
    levels = [
        *_ares_down(),  # alevel0: 256
        *_ares(), *_ares(), *_ares_down(),  # alevel1: 256
        *_ares(), *_ares(), *_ares_down(),  # alevel2: 128
        *_ares(), *_ares(), *_ares(), *_ares_down(),  # alevel3: 64
        *_ares(), *_ares(), *_ares(),  # alevel4: 32
    ]
    return [_L(Fc), _L(Pool), *levels, _L(Pool), _L(Relu), _L(Affine), _L(Conv)]


def mmod_topology() -> list[_Token]:
    """dlib's mmod face ``net_type`` (dnn_mmod_face_detection_ex.cpp), top-down, input excluded."""
    rcon = [_L(Relu), _L(Affine), _L(Conv)]
    return [_L(Conv), *rcon, *rcon, *rcon, *rcon, *rcon, *rcon]


def _bind(net: DlibNet, topology: list[_Token]) -> Iterator[tuple[_Token, Layer | None]]:
    """Yield tokens bottom-up, each computational one with its parsed layer; fail on any mismatch."""
    if len(topology) != len(net.wrapper_versions):
        raise DlibFormatError(f"file has {len(net.wrapper_versions)} layers, expected {len(topology)}")
    for i, (token, version) in enumerate(zip(topology, net.wrapper_versions, strict=True)):
        innermost = i == len(topology) - 1
        want = (3 if innermost else 2) if isinstance(token, _L) else 1
        if version != want:
            raise DlibFormatError(f"layer {i} has wrapper version {version}, expected {want}")
    layers = iter(net.layers)
    for token in reversed(topology):
        if isinstance(token, _L):
            layer = next(layers)
            if not isinstance(layer, token.kind):
                raise DlibFormatError(f"expected a {token.kind.__name__} layer, found {type(layer).__name__}")
            yield token, layer
        else:
            yield token, None


# --- graph building ---------------------------------------------------------------------

@dataclass(slots=True)
class _Value:
    name: str
    shape: tuple[int, int, int]  # C, H, W


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, array: np.ndarray) -> str:
        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str | None = None, **attrs: object) -> str:
        out = self.name(stem or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))  # type: ignore[arg-type]
        return out


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


def _conv(g: _Graph, x: _Value, layer: Conv, affine: Affine | None) -> _Value:
    weights, bias = layer.weights, layer.bias
    if bias is None:
        bias = np.zeros(layer.num_filters, np.float32)
    if affine is not None:
        # Fold the frozen batch norm into the convolution: one op instead of three.
        weights = (weights * affine.gamma.reshape(-1, 1, 1, 1)).astype(np.float32)
        bias = (bias * affine.gamma + affine.beta).astype(np.float32)
    out = g.op(
        "Conv",
        [x.name, g.const("w", weights), g.const("b", bias)],
        kernel_shape=[layer.rows, layer.cols],
        strides=[layer.stride_y, layer.stride_x],
        pads=[layer.pad_y, layer.pad_x, layer.pad_y, layer.pad_x],
    )
    _, h, w = x.shape
    return _Value(out, (layer.num_filters, _out_size(h, layer.rows, layer.stride_y, layer.pad_y),
                        _out_size(w, layer.cols, layer.stride_x, layer.pad_x)))


def _pool(g: _Graph, x: _Value, layer: Pool) -> _Value:
    c, h, w = x.shape
    if layer.rows == 0 and layer.cols == 0:
        return _Value(g.op("GlobalMaxPool" if layer.max_pool else "GlobalAveragePool", [x.name]), (c, 1, 1))
    if layer.rows == 0 or layer.cols == 0:
        raise DlibFormatError("pooling over a whole single axis is not supported")
    out = g.op(
        "MaxPool" if layer.max_pool else "AveragePool",
        [x.name],
        kernel_shape=[layer.rows, layer.cols],
        strides=[layer.stride_y, layer.stride_x],
        pads=[layer.pad_y, layer.pad_x, layer.pad_y, layer.pad_x],
    )
    return _Value(out, (c, _out_size(h, layer.rows, layer.stride_y, layer.pad_y),
                        _out_size(w, layer.cols, layer.stride_x, layer.pad_x)))


def _pad_to(g: _Graph, x: _Value, shape: tuple[int, int, int]) -> str:
    extra = [t - s for t, s in zip(shape, x.shape, strict=True)]
    if not any(extra):
        return x.name
    pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
    return g.op("Pad", [x.name, g.const("pads", pads)])


def _add_prev(g: _Graph, a: _Value, b: _Value) -> _Value:
    # dlib's tt::add: the result takes the larger size on every axis, missing values count as 0.
    shape = (max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1]), max(a.shape[2], b.shape[2]))
    return _Value(g.op("Add", [_pad_to(g, a, shape), _pad_to(g, b, shape)]), shape)


def _emit_body(g: _Graph, x: _Value, bound: list[tuple[_Token, Layer | None]], *, fold: bool) -> _Value:
    tags: dict[int, _Value] = {}
    i = 0
    while i < len(bound):
        token, layer = bound[i]
        if isinstance(token, _Tag):
            tags[token.id] = x
        elif isinstance(token, _Skip):
            x = tags[token.id]
        elif isinstance(layer, Conv):
            nxt = bound[i + 1][1] if i + 1 < len(bound) else None
            if fold and isinstance(nxt, Affine) and nxt.conv_mode:
                x = _conv(g, x, layer, nxt)
                i += 1
            else:
                x = _conv(g, x, layer, None)
        elif isinstance(layer, Affine):
            if not layer.conv_mode:
                raise DlibFormatError("per-element (FC mode) affine layers are not supported")
            scale = g.const("gamma", layer.gamma.reshape(1, -1, 1, 1))
            shift = g.const("beta", layer.beta.reshape(1, -1, 1, 1))
            x = _Value(g.op("Add", [g.op("Mul", [x.name, scale]), shift]), x.shape)
        elif isinstance(layer, Relu):
            x = _Value(g.op("Relu", [x.name]), x.shape)
        elif isinstance(layer, Pool):
            x = _pool(g, x, layer)
        elif isinstance(layer, AddPrev) and isinstance(token, _L):
            x = _add_prev(g, x, tags[token.tag])
        elif isinstance(layer, Fc):
            flat = g.op("Flatten", [x.name], axis=1)
            y = g.op("MatMul", [flat, g.const("fc_w", layer.weights)])
            if layer.bias is not None:
                y = g.op("Add", [y, g.const("fc_b", layer.bias)])
            x = _Value(y, (layer.weights.shape[1], 1, 1))
        i += 1
    return x


def _preprocess(g: _Graph, net: DlibNet, nhwc_u8: str) -> str:
    """uint8 NHWC RGB -> float NCHW, exactly dlib's (pixel - avg) / 256."""
    x = g.op("Cast", [nhwc_u8], to=TensorProto.FLOAT)
    x = g.op("Transpose", [x], perm=[0, 3, 1, 2])
    avg = np.array([net.input.avg_red, net.input.avg_green, net.input.avg_blue], np.float32).reshape(1, 3, 1, 1)
    x = g.op("Sub", [x, g.const("avg", avg)])
    return g.op("Mul", [x, g.const("scale", np.array(1 / 256, np.float32))])


def _model(
    g: _Graph,
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    doc: str,
    metadata: dict[str, str] | None = None,
) -> bytes:
    graph = helper.make_graph(g.nodes, "dlib", inputs, outputs, initializer=g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="faceward",
        producer_version=str(CONVERTER_VERSION),
        doc_string=doc,
    )
    model.ir_version = 8  # readable by every onnxruntime >= 1.15
    helper.set_model_props(model, metadata or {})
    onnx.checker.check_model(model)
    return cast(bytes, model.SerializeToString(deterministic=True))


def descriptor_onnx(net: DlibNet, *, fold_affine: bool = True) -> bytes:
    """ONNX bytes for the ResNet descriptor: ``chips`` uint8 [N,150,150,3] RGB -> ``descriptors`` float [N,128]."""
    if net.input.name != "input_rgb_image_sized" or net.input.rows is None or net.input.cols is None:
        raise DlibFormatError(f"descriptor input must be input_rgb_image_sized, found {net.input.name}")
    rows, cols = net.input.rows, net.input.cols
    g = _Graph()
    x = _Value(_preprocess(g, net, DESCRIPTOR_INPUT), (3, rows, cols))
    y = _emit_body(g, x, list(_bind(net, descriptor_topology())), fold=fold_affine)
    g.op("Identity", [y.name])
    g.nodes[-1].output[0] = DESCRIPTOR_OUTPUT
    inputs = [helper.make_tensor_value_info(DESCRIPTOR_INPUT, TensorProto.UINT8, ["N", rows, cols, 3])]
    outputs = [helper.make_tensor_value_info(DESCRIPTOR_OUTPUT, TensorProto.FLOAT, ["N", y.shape[0]])]
    return _model(g, inputs, outputs, "dlib_face_recognition_resnet_model_v1, converted by faceward")


def mmod_onnx(net: DlibNet, *, fold_affine: bool = True) -> bytes:
    """ONNX bytes for the MMOD detector's convolutions.

    Input ``pyramid``: float [N,3,H,W], the normalised tiled pyramid dlib's input layer builds
    (see :mod:`faceward.vision.onnx.pyramid`); output ``scores``: float [N,windows,h,w].
    """
    if net.input.name != "input_rgb_image_pyramid":
        raise DlibFormatError(f"mmod input must be input_rgb_image_pyramid, found {net.input.name}")
    g = _Graph()
    x = _Value(MMOD_INPUT, (3, 0, 0))  # spatial size is dynamic; only add_prev would need it
    y = _emit_body(g, x, list(_bind(net, mmod_topology())), fold=fold_affine)
    g.op("Identity", [y.name])
    g.nodes[-1].output[0] = MMOD_OUTPUT
    inputs = [helper.make_tensor_value_info(MMOD_INPUT, TensorProto.FLOAT, ["N", 3, "H", "W"])]
    outputs = [helper.make_tensor_value_info(MMOD_OUTPUT, TensorProto.FLOAT, ["N", y.shape[0], "h", "w"])]
    return _model(g, inputs, outputs, "mmod_human_face_detector, converted by faceward", mmod_metadata(net))


def mmod_metadata(net: DlibNet) -> dict[str, str]:
    """What decoding needs besides the convolutions, stored in the .onnx so it is self-contained.

    ``map`` is dlib's ``output_tensor_to_input_tensor`` for this net: input = scale * output + offset
    (each conv maps p -> p * stride - pad + kernel / 2).
    """
    padding, outer = net.input.pyramid_padding, net.input.pyramid_outer_padding
    if not isinstance(net.loss, LossMmod) or padding is None or outer is None:
        raise DlibFormatError("not an MMOD network")
    if net.loss.use_bounding_box_regression:
        raise DlibFormatError("MMOD bounding box regression is not supported")
    scale, offset = 1, 0
    for layer in reversed(net.layers):
        if isinstance(layer, Conv):
            if (layer.stride_x, layer.pad_x, layer.cols) != (layer.stride_y, layer.pad_y, layer.rows):
                raise DlibFormatError("non-square convolutions are not supported in the MMOD decoder")
            scale, offset = scale * layer.stride_y, offset * layer.stride_y - layer.pad_y + layer.rows // 2
        elif isinstance(layer, Pool):
            raise DlibFormatError("pooling layers are not supported in the MMOD decoder")
    return {
        "faceward.kind": "mmod",
        "dlib.input.avg": ",".join(repr(v) for v in (net.input.avg_red, net.input.avg_green, net.input.avg_blue)),
        "dlib.pyramid.down": "6",  # pyramid_down<6>: the net's C++ type, not stored in the file
        "dlib.pyramid.padding": str(padding),
        "dlib.pyramid.outer_padding": str(outer),
        "dlib.mmod.windows": ";".join(f"{w.width}x{w.height}" for w in net.loss.windows),
        "dlib.mmod.nms": f"{net.loss.nms_iou_thresh!r},{net.loss.nms_percent_covered_thresh!r}",
        "dlib.mmod.map": f"{scale},{offset}",
    }


# --- cache ------------------------------------------------------------------------------

def verified_source(kind: ModelKind, source: Path | None = None) -> tuple[Path, str]:
    """The dlib file for ``kind`` and its SHA-256, refusing a file that differs from the pinned one."""
    entry = MANIFEST[_MODEL_OF[kind]]
    path = source if source is not None else package_model_dir() / entry.filename
    if not path.is_file():
        raise ModelIntegrityError(f"model file {path} is missing")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise ModelIntegrityError(
            f"model file {path} has SHA-256 {digest}, expected {entry.sha256}; refusing to convert it"
        )
    return path, digest


def convert(kind: ModelKind, source: Path | None = None) -> bytes:
    """Convert a pinned dlib file to ONNX bytes (deterministic: same input, same bytes)."""
    path, _ = verified_source(kind, source)
    net = read_file(path)
    return descriptor_onnx(net) if kind == "descriptor" else mmod_onnx(net)


def converted_model_path(kind: ModelKind, cache_dir: Path, *, source: Path | None = None) -> Path:
    """Path of the converted model in ``cache_dir``, converting on first use.

    Entries are keyed by the source's SHA-256 and the converter version; a sidecar
    ``.sha256`` guards against a truncated or edited cache file, which is rebuilt.
    """
    _, digest = verified_source(kind, source)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{kind}-{digest[:16]}-c{CONVERTER_VERSION}.onnx"
    sidecar = target.with_suffix(".onnx.sha256")
    if target.is_file() and sidecar.is_file() and sidecar.read_text().strip() == sha256_file(target):
        return target
    data = convert(kind, source)
    for path, payload in ((target, data), (sidecar, hashlib.sha256(data).hexdigest().encode())):
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, path)  # atomic: concurrent workers never see half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target
