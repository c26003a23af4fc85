"""Read a network dlib serialized (`dlib::serialize(net)`, the `.dat` files), without dlib: torch-free, numpy only.

dlib writes a network from its loss layer inwards: each wrapper's version number on the way down, then on the way
back up each layer's details (a name such as `con_4`, its sizes and its weights as one flat float32 tensor) and the
wrapper's training state (flags and, in saved nets, empty tensors). So the file can only be read against the layer
list its C++ type spelled; `read_network` takes that list (output first, as the C++ template reads) and returns the
layers with weights in the order a forward pass meets them. The format follows dlib's serialize.h, tensor.h,
core.h, layers.h, input.h and loss.h (dlib 19.x-20.x).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceattr.errors import ConfigError

# the wrappers that hold no layer of their own (dlib's tag and skip layers): a version, then the subnetwork
WRAPPERS = frozenset({"tag", "skip"})


@dataclass
class Layer:
    """One layer as the file holds it: its kind (a key of LAYER_READERS, such as `con`), its settings and its
    weights (`params`: dlib's flat tensor, float32; None for layers without weights)."""

    kind: str
    settings: dict[str, int | float] = field(default_factory=dict)
    params: np.ndarray | None = None


class _Reader:
    """dlib's primitive encodings: integers as a control byte (size | sign) and little-endian bytes, floats as an
    integer mantissa and exponent, bools as '0' / '1', strings as a length and bytes, tensors (version 2) as four
    dimensions and raw little-endian float32."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> ConfigError:
        return ConfigError(f"{self.path} is not the dlib network expected: {what} at byte {self.pos}")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail("the file ends early")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise self.fail(f"bad integer control byte {control:#x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:  # dlib's codes for inf, -inf and nan
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.fail(f"bad bool {byte!r}")
        return byte == b"1"

    def string(self) -> str:
        return self.take(self.int()).decode("latin-1")

    def tensor(self) -> np.ndarray:
        if (version := self.int()) != 2:
            raise self.fail(f"tensor version {version} (only dlib's version 2 is read)")
        shape = [self.int() for _ in range(4)]
        count = math.prod(shape)
        if min(shape) < 0 or 4 * count > len(self.data) - self.pos:  # sizes from the file are checked before use
            raise self.fail(f"a tensor of shape {shape} does not fit in the file")
        return np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, ...]:
        if (version := self.int()) != 1:
            raise self.fail(f"alias tensor version {version}")
        return tuple(self.int() for _ in range(4))

    def expect(self, names: tuple[str, ...]) -> str:
        name = self.string()
        if name not in names:
            raise self.fail(f"found layer '{name}' where {' or '.join(names)} belongs")
        return name


def _con(r: _Reader) -> Layer:
    version = r.expect(("con_4", "con_5", "con_6"))
    params = r.tensor()
    s = {"filters": r.int(), "rows": r.int(), "cols": r.int(), "stride_y": r.int(), "stride_x": r.int()}
    s |= {"padding_y": r.int(), "padding_x": r.int()}
    r.alias(), r.alias()  # the filters' and biases' views into params
    _ = [r.float() for _ in range(4)]  # learning-rate and weight-decay multipliers
    s["bias"] = int(r.bool()) if version in ("con_5", "con_6") else 1
    if version == "con_6":
        r.bool()  # use_relu: a fused ReLU only at training time
    return Layer("con", s, params)


def _affine(r: _Reader) -> Layer:
    version = r.expect(("affine_", "affine_2"))
    params = r.tensor()
    r.alias(), r.alias()  # gamma, beta
    s = {"mode": r.int()}
    if version == "affine_2":
        s["disabled"] = int(r.bool())
    return Layer("affine", s, params)


def _relu(r: _Reader) -> Layer:
    if r.expect(("relu_", "relu_2")) == "relu_2":
        r.bool()
    return Layer("relu")


def _pool(kind: str) -> Callable[[_Reader], Layer]:
    def read(r: _Reader) -> Layer:
        r.expect((f"{kind}_2",))
        keys = ("rows", "cols", "stride_y", "stride_x", "padding_y", "padding_x")
        return Layer(kind, {k: r.int() for k in keys})

    return read


def _add_prev(r: _Reader) -> Layer:
    r.expect(("add_prev_",))
    return Layer("add_prev")


def _fc(r: _Reader) -> Layer:
    version = r.expect(("fc_2", "fc_3"))
    s = {"outputs": r.int(), "inputs": r.int()}
    params = r.tensor()
    r.alias(), r.alias()
    s["bias"] = int(r.int() == 0)  # dlib's fc_bias_mode: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    _ = [r.float() for _ in range(4)]
    if version == "fc_3":
        s["bias"] = int(r.bool()) and s["bias"]
    return Layer("fc", s, params)


def _input_rgb(r: _Reader) -> Layer:
    r.expect(("input_rgb_image_sized",))
    s = {"mean_red": r.float(), "mean_green": r.float(), "mean_blue": r.float(), "rows": r.int(), "cols": r.int()}
    return Layer("input_rgb", s)


def _loss_metric(r: _Reader) -> Layer:
    if r.expect(("loss_metric_", "loss_metric_2")) == "loss_metric_2":
        return Layer("loss_metric", {"margin": r.float(), "distance_threshold": r.float()})
    return Layer("loss_metric", {"margin": 0.1, "distance_threshold": 0.75})


LAYER_READERS = {
    "con": _con,
    "affine": _affine,
    "relu": _relu,
    "max_pool": _pool("max_pool"),
    "avg_pool": _pool("avg_pool"),
    "add_prev": _add_prev,
    "fc": _fc,
    "input_rgb": _input_rgb,
    "loss_metric": _loss_metric,
}


def read_network(path: Path, kinds: list[str]) -> list[Layer]:
    """The layers of the dlib network in `path` whose C++ type lists, output first, `kinds`: a loss layer, then
    `con`, `affine`, ... and `tag` / `skip` for dlib's wrappers, ending with the input layer. Returns the layers
    input first (wrappers left out), or raises ConfigError naming the file and the byte where it disagrees."""
    path = Path(path)
    try:
        r = _Reader(path.read_bytes(), path)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    layers: list[Layer] = []
    if r.int() != 1:
        raise r.fail("unknown loss layer version")
    loss = LAYER_READERS[kinds[0]](r)
    _read_subnet(r, kinds, 1, layers)
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} bytes left after the network")
    return [*layers, loss]


def _read_subnet(r: _Reader, kinds: list[str], i: int, layers: list[Layer]) -> None:
    """Layer `kinds[i]` and everything under it (recursion follows dlib's own order: the subnetwork first)."""
    version = r.int()
    if kinds[i] in WRAPPERS:
        _read_subnet(r, kinds, i + 1, layers)
        return
    over_input = i + 2 == len(kinds)
    if over_input:
        layers.append(LAYER_READERS[kinds[i + 1]](r))
    else:
        _read_subnet(r, kinds, i + 1, layers)
    layers.append(LAYER_READERS[kinds[i]](r))
    _ = [r.bool() for _ in range(3)]  # set up, gradient stale, output disabled
    r.tensor(), r.tensor()  # x_grad, cached_output: empty in a saved network
    if over_input:
        r.tensor()  # grad_final
        if version >= 3:
            r.int()  # sample expansion factor
    elif version == 2:
        r.tensor()  # params_grad
