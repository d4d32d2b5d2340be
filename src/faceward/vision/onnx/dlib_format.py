"""Reader for dlib's serialized DNN files (``dlib::serialize(net, out)``).

dlib writes a network as the nested C++ type it is: the loss layer, then one
version integer per wrapper layer (``add_layer``, ``add_tag_layer``,
``add_skip_layer``) from the outside in, then the input layer, then each
``add_layer``'s details from the inside out. Tags and skips carry no payload, so
the reader returns the flat layer list plus the wrapper versions; the converter
supplies the topology (which wrappers are tags/skips and their ids).

Integers are dlib's length-prefixed little-endian form, scalars ``float_details``
(int64 mantissa, int16 exponent), tensors raw little-endian float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float32]

# Exponent values float_details reserves for non-finite numbers.
_IS_INF, _IS_NINF, _IS_NAN = 32000, 32001, 32002
# Guard against absurd sizes in corrupt files before allocating anything.
_MAX_TENSOR_ELEMENTS = 1 << 28
_MAX_STRING = 1 << 16


class DlibFormatError(ValueError):
    """The bytes are not a dlib network this reader understands (truncated, corrupt, or unsupported)."""


@dataclass(frozen=True, slots=True)
class InputLayer:
    name: str  # "input_rgb_image_sized", "input_rgb_image_pyramid", ...
    avg_red: float
    avg_green: float
    avg_blue: float
    rows: int | None = None  # input_rgb_image_sized only
    cols: int | None = None
    pyramid_padding: int | None = None  # input_rgb_image_pyramid only
    pyramid_outer_padding: int | None = None


@dataclass(frozen=True, slots=True)
class Conv:
    num_filters: int
    rows: int
    cols: int
    stride_y: int
    stride_x: int
    pad_y: int
    pad_x: int
    weights: Floats  # [num_filters, in_channels, rows, cols] (OIHW, cross-correlation)
    bias: Floats | None


@dataclass(frozen=True, slots=True)
class Affine:
    """Per-channel ``x * gamma + beta`` (a frozen batch norm); ``conv_mode`` False means per-element."""

    gamma: Floats
    beta: Floats
    conv_mode: bool


@dataclass(frozen=True, slots=True)
class Relu:
    pass


@dataclass(frozen=True, slots=True)
class Pool:
    max_pool: bool  # False: average
    rows: int  # 0: the whole input
    cols: int
    stride_y: int
    stride_x: int
    pad_y: int
    pad_x: int


@dataclass(frozen=True, slots=True)
class Fc:
    weights: Floats  # [num_inputs, num_outputs]: output = flatten(input) @ weights
    bias: Floats | None


@dataclass(frozen=True, slots=True)
class AddPrev:
    pass


Layer = Conv | Affine | Relu | Pool | Fc | AddPrev


@dataclass(frozen=True, slots=True)
class DetectorWindow:
    width: int
    height: int
    label: str = ""


@dataclass(frozen=True, slots=True)
class LossMetric:
    margin: float
    dist_thresh: float


@dataclass(frozen=True, slots=True)
class LossMmod:
    windows: tuple[DetectorWindow, ...]
    nms_iou_thresh: float
    nms_percent_covered_thresh: float
    use_bounding_box_regression: bool = False


Loss = LossMetric | LossMmod


@dataclass(frozen=True, slots=True)
class DlibNet:
    loss: Loss
    wrapper_versions: tuple[int, ...]  # outermost first; 1 = tag/skip, 2/3 = add_layer or input tag
    input: InputLayer
    layers: tuple[Layer, ...] = field(default=())  # innermost (next to the input) first


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DlibFormatError(f"truncated file: needed {n} bytes for {what} at offset {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int_(self, what: str = "integer", *, signed: bool = True, max_bytes: int = 8) -> int:
        head = self._take(1, what)[0]
        size = head & 0x0F
        if size == 0 or size > max_bytes or (head & 0x70):
            raise DlibFormatError(f"corrupt {what} control byte 0x{head:02x} at offset {self.pos - 1}")
        value = int.from_bytes(self._take(size, what), "little")
        if head & 0x80:
            if not signed:
                raise DlibFormatError(f"negative {what} at offset {self.pos}")
            value = -value
        return value

    def uint(self, what: str = "unsigned integer") -> int:
        return self.int_(what, signed=False)

    def float_(self, what: str = "float") -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise DlibFormatError(f"unsupported ASCII float for {what} at offset {self.pos}")
        mantissa = self.int_(what)
        exponent = self.int_(what, max_bytes=2)  # an int16 in dlib
        if exponent == _IS_INF:
            return math.inf
        if exponent == _IS_NINF:
            return -math.inf
        if exponent == _IS_NAN:
            return math.nan
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError as exc:
            raise DlibFormatError(f"{what} out of range at offset {self.pos}") from exc

    def float32(self, what: str) -> float:
        # dlib stores C++ floats; round the exact value to float32 as deserialize() does.
        value = self.float_(what)
        if math.isfinite(value) and abs(value) > float(np.finfo(np.float32).max):
            raise DlibFormatError(f"{what} out of range at offset {self.pos}")
        return float(np.float32(value))

    def bool_(self, what: str = "bool") -> bool:
        ch = self._take(1, what)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"corrupt {what} byte {ch!r} at offset {self.pos - 1}")
        return ch == b"1"

    def str_(self, what: str = "string") -> str:
        size = self.uint(what)
        if size > _MAX_STRING:
            raise DlibFormatError(f"implausible {what} length {size}")
        try:
            return self._take(size, what).decode("ascii")
        except UnicodeDecodeError as exc:
            raise DlibFormatError(f"non-ASCII {what} at offset {self.pos - size}") from exc

    def expect_version(self, allowed: tuple[int, ...], what: str) -> int:
        version = self.int_(f"{what} version")
        if version not in allowed:
            raise DlibFormatError(f"unsupported {what} version {version}")
        return version

    def tensor(self, what: str = "tensor") -> Floats:
        self.expect_version((2,), what)
        dims = tuple(self.int_(f"{what} dims") for _ in range(4))
        if any(d < 0 for d in dims):
            raise DlibFormatError(f"negative {what} dimensions {dims}")
        count = math.prod(dims)
        if count > _MAX_TENSOR_ELEMENTS:
            raise DlibFormatError(f"implausible {what} size {dims}")
        raw = self._take(4 * count, what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        self.expect_version((1,), what)
        n, k, nr, nc = (self.int_(f"{what} dims") for _ in range(4))
        if min(n, k, nr, nc) < 0:
            raise DlibFormatError(f"negative {what} dimensions {(n, k, nr, nc)}")
        return n, k, nr, nc


def _split(params: Floats, *shapes: tuple[int, ...]) -> list[Floats]:
    flat = params.reshape(-1)
    need = sum(math.prod(s) for s in shapes)
    if flat.size < need:
        raise DlibFormatError(f"parameter tensor has {flat.size} values, layer needs {need}")
    out: list[Floats] = []
    at = 0
    for s in shapes:
        n = math.prod(s)
        out.append(flat[at : at + n].reshape(s).copy())
        at += n
    return out


def _read_loss(r: _Reader) -> Loss:
    r.expect_version((1,), "add_loss_layer")
    name = r.str_("loss name")
    if name == "loss_metric_":
        return LossMetric(0.1, 0.75)
    if name == "loss_metric_2":
        return LossMetric(r.float_("margin"), r.float_("dist_thresh"))
    if name == "loss_mmod_":
        version = r.expect_version((1, 2, 3, 4), "mmod_options")
        windows: list[DetectorWindow] = []
        if version == 1:
            windows.append(DetectorWindow(r.uint("window width"), r.uint("window height")))
        else:
            for _ in range(r.uint("window count")):
                wv = r.expect_version((1, 2), "detector window")  # dlib writes 1 (w,h) or 2 (+label)
                width, height = r.uint("window width"), r.uint("window height")
                windows.append(DetectorWindow(width, height, r.str_("window label") if wv == 2 else ""))
        r.float_("loss_per_false_alarm")
        r.float_("loss_per_missed_target")
        r.float_("truth_match_iou_threshold")
        nms_iou, nms_cover = r.float_("nms iou"), r.float_("nms covered")
        r.float_("ignore iou")
        r.float_("ignore covered")
        bbr = False
        if version >= 3:
            r.int_("assume_image_pyramid")
        if version >= 4:
            bbr = r.bool_("use_bounding_box_regression")
            r.float_("bbr_lambda")
        return LossMmod(tuple(windows), nms_iou, nms_cover, bbr)
    raise DlibFormatError(f"unsupported loss layer {name!r}")


def _read_input(r: _Reader, name: str) -> InputLayer:
    avg = (r.float32("avg_red"), r.float32("avg_green"), r.float32("avg_blue"))
    if name == "input_rgb_image_sized":
        return InputLayer(name, *avg, rows=r.uint("rows"), cols=r.uint("cols"))
    if name == "input_rgb_image":
        return InputLayer(name, *avg)
    if name == "input_rgb_image_pyramid":
        return InputLayer(name, *avg, pyramid_padding=10, pyramid_outer_padding=11)
    if name == "input_rgb_image_pyramid2":
        return InputLayer(
            "input_rgb_image_pyramid", *avg, pyramid_padding=r.uint("padding"), pyramid_outer_padding=r.uint("outer")
        )
    raise DlibFormatError(f"unsupported input layer {name!r}")


def _read_conv(r: _Reader, name: str) -> Conv:
    params = r.tensor("con_ params")
    num_filters = r.int_("num_filters")
    rows, cols, sy, sx = r.int_(), r.int_(), r.int_(), r.int_()
    pad_y, pad_x = r.int_(), r.int_()
    fshape = r.alias("con_ filters")
    r.alias("con_ biases")
    for _ in range(4):
        r.float_("multiplier")
    use_bias = r.bool_("use_bias") if name in ("con_5", "con_6") else True
    if name == "con_6" and r.bool_("use_relu"):
        raise DlibFormatError("con_ with fused relu is not supported")
    if fshape[0] != num_filters or fshape[2:] != (rows, cols):
        raise DlibFormatError(f"con_ filter shape {fshape} disagrees with its header")
    if use_bias:
        weights, bias = _split(params, fshape, (num_filters,))
        return Conv(num_filters, rows, cols, sy, sx, pad_y, pad_x, weights, bias)
    (weights,) = _split(params, fshape)
    return Conv(num_filters, rows, cols, sy, sx, pad_y, pad_x, weights, None)


def _read_bn_as_affine(r: _Reader, name: str) -> Affine:
    params = r.tensor("bn_ params")
    gshape = r.alias("bn_ gamma")
    r.alias("bn_ beta")
    r.tensor("bn_ means")
    r.tensor("bn_ invstds")
    running_means = r.tensor("bn_ running_means").reshape(-1)
    running_vars = r.tensor("bn_ running_variances").reshape(-1)
    r.uint("num_updates")
    r.uint("running_stats_window_size")
    for _ in range(4):
        r.float_("multiplier")
    eps = np.float32(r.float_("eps"))
    n = math.prod(gshape)
    gamma, beta = _split(params, (n,), (n,))
    # The same float32 arithmetic as dlib's affine_(const bn_&) constructor.
    g = (gamma / np.sqrt(running_vars + eps)).astype(np.float32)
    b = (beta - g * running_means).astype(np.float32)
    return Affine(g, b, conv_mode=(name == "bn_con2"))


def _read_affine(r: _Reader, name: str) -> Affine:
    if name in ("bn_con2", "bn_fc2"):
        return _read_bn_as_affine(r, name)
    params = r.tensor("affine_ params")
    gshape = r.alias("affine_ gamma")
    r.alias("affine_ beta")
    mode = r.int_("affine_ mode")
    if name == "affine_2" and r.bool_("disabled"):
        raise DlibFormatError("disabled affine_ layers are not supported")
    n = math.prod(gshape)
    gamma, beta = _split(params, (n,), (n,))
    return Affine(gamma, beta, conv_mode=(mode == 0))  # dlib layer_mode: CONV_MODE = 0, FC_MODE = 1


def _read_pool(r: _Reader, name: str) -> Pool:
    rows, cols, sy, sx, pad_y, pad_x = (r.int_(name) for _ in range(6))
    return Pool(name.startswith("max"), rows, cols, sy, sx, pad_y, pad_x)


def _read_fc(r: _Reader, name: str) -> Fc:
    num_outputs = r.uint("num_outputs")
    num_inputs = r.uint("num_inputs")
    params = r.tensor("fc_ params")
    r.alias("fc_ weights")
    r.alias("fc_ biases")
    bias_mode = r.int_("bias_mode")  # dlib fc_bias_mode: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):
        r.float_("multiplier")
    use_bias = bias_mode == 0
    if name == "fc_3":
        use_bias = r.bool_("use_bias") and use_bias
    if use_bias:
        weights, bias = _split(params, (num_inputs, num_outputs), (num_outputs,))
        return Fc(weights, bias)
    (weights,) = _split(params, (num_inputs, num_outputs))
    return Fc(weights, None)


def _read_details(r: _Reader) -> Layer:
    name = r.str_("layer name")
    if name in ("con_4", "con_5", "con_6"):
        return _read_conv(r, name)
    if name in ("affine_", "affine_2", "bn_con2", "bn_fc2"):
        return _read_affine(r, name)
    if name in ("relu_", "relu_2"):
        if name == "relu_2" and r.bool_("disabled"):
            raise DlibFormatError("disabled relu_ layers are not supported")
        return Relu()
    if name in ("max_pool_2", "avg_pool_2"):
        return _read_pool(r, name)
    if name in ("fc_2", "fc_3"):
        return _read_fc(r, name)
    if name == "add_prev_":
        return AddPrev()
    raise DlibFormatError(f"unsupported layer {name!r}")


def parse(data: bytes) -> DlibNet:
    """Parse a whole serialized network; raises :class:`DlibFormatError` on anything unexpected."""
    try:
        return _parse(data)
    except DlibFormatError:
        raise
    except (ValueError, OverflowError, IndexError, MemoryError) as exc:  # belt and braces for hostile bytes
        raise DlibFormatError(f"corrupt dlib network: {exc}") from exc


def _parse(data: bytes) -> DlibNet:
    r = _Reader(data)
    loss = _read_loss(r)
    versions: list[int] = []
    while True:
        mark = r.pos
        value = r.int_("layer version")
        if value in (1, 2, 3):
            versions.append(value)
            if value == 3:
                break  # only an add_layer over the input layer writes version 3
            continue
        r.pos = mark  # not a version: the length prefix of the input layer's name
        break
    if not versions:
        raise DlibFormatError("no layers found")
    inp = _read_input(r, r.str_("input layer name"))
    layers: list[Layer] = []
    if versions[-1] == 1:
        raise DlibFormatError("a tag directly over the input layer is not supported")
    for version in reversed(versions):
        if version == 1:
            continue  # tag/skip: no payload
        layers.append(_read_details(r))
        r.bool_("this_layer_setup_called")
        r.bool_("gradient_input_is_stale")
        r.bool_("get_output_and_gradient_input_disabled")
        r.tensor("x_grad")
        r.tensor("cached_output")
        r.tensor("grad_final" if version == 3 else "params_grad")
        if version == 3:
            r.uint("sample_expansion_factor")
    if r.pos != len(data):
        raise DlibFormatError(f"{len(data) - r.pos} trailing bytes after the network")
    return DlibNet(loss, tuple(versions), inp, tuple(layers))


def read_file(path: Path) -> DlibNet:
    """Parse the dlib network stored at ``path``."""
    return parse(path.read_bytes())
