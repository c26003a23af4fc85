"""YAML loading and dotlist overrides onto the schema (OmegaConf structured configs).

An experiment is a YAML file plus `key=value` overrides; an unknown key or a value that makes no sense is
refused here, before any data is read, with the valid keys listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from faceattr.atomic import write_text
from faceattr.config.schema import Config, validate
from faceattr.errors import ConfigError


def _valid_keys(schema: DictConfig, dotted: str) -> list[str]:
    """Keys that exist at the level of `dotted` (the section the bad key was in)."""
    node: Any = schema
    for part in dotted.split(".")[:-1]:
        if isinstance(node, DictConfig) and part in node:
            node = node[part]
        else:
            break
    prefix = dotted.rsplit(".", 1)[0] + "." if "." in dotted else ""
    if not isinstance(node, DictConfig):
        return []
    return [prefix + k for k in node]


def _merge(base: DictConfig, other: DictConfig | list[str], origin: str) -> DictConfig:
    try:
        if isinstance(other, list):
            for item in other:
                if "=" not in item:
                    raise ConfigError(f"override '{item}' from {origin} is not key=value (e.g. train.epochs=5)")
            other = OmegaConf.from_dotlist(other)
        merged = OmegaConf.merge(base, other)
        # `key={}` on the command line, or `key: {}` in a file, empties a free mapping such as priors.target that a
        # config file filled (a merge would keep its entries)
        for key in _empty_mappings(other):
            if OmegaConf.get_type(OmegaConf.select(merged, key)) is dict:
                OmegaConf.update(merged, key, {}, merge=False)
        return merged
    except (ConfigKeyError, ConfigAttributeError) as e:
        key = e.full_key or str(e)
        valid = ", ".join(_valid_keys(base, key))
        raise ConfigError(f"unknown config key '{key}' in {origin}. Valid keys here: {valid}") from None
    except ValidationError as e:
        # YAML reads {a:1} as one key "a:1" without a value: the usual slip in a mapping on the command line
        hint = "; in a mapping put a space after each colon, e.g. key={a: 1, b: 2}" if ":" in str(e.full_key) else ""
        raise ConfigError(f"bad value for '{e.full_key}' in {origin}: {str(e.msg).splitlines()[0]}{hint}") from None
    except (OmegaConfBaseException, ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read config from {origin}: {e}") from None


def _empty_mappings(node: DictConfig, prefix: str = "") -> list[str]:
    """The dotted keys whose value in a config file is `{}`."""
    out = []
    for key, value in node.items_ex(resolve=False):
        if isinstance(value, DictConfig):
            out += _empty_mappings(value, f"{prefix}{key}.") if len(value) else [f"{prefix}{key}"]
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults <- YAML file (after the file its `base:` names) <- dotlist overrides, then validated."""
    cfg = OmegaConf.structured(Config)
    if path is not None:
        for file, loaded in _read_with_bases(Path(path)):
            cfg = _merge(cfg, loaded, str(file))
    if overrides:
        cfg = _merge(cfg, list(overrides), "the command line")
    typed: Config = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    validate(typed)
    return typed


def _read_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, DictConfig]]:
    """A config file and, first, the chain of files its `base:` key names (a path relative to the file), so a
    recipe states only how it differs from the one it builds on, as mmdetection's `_base_` does."""
    if not path.is_file():
        what = "is a folder, not a YAML file" if path.is_dir() else "not found"
        raise ConfigError(f"config file {path} {what}; presets live in configs/ (e.g. configs/mask.yaml)")
    try:
        loaded = OmegaConf.load(path)
    except Exception as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(
            f"{path} holds a {type(loaded).__name__.removesuffix('Config').lower()}, not a mapping of sections; "
            "a config looks like configs/mask.yaml (data:, model:, train: ...)"
        )
    base = loaded.pop("base", None)
    if base is None:
        return [(path, loaded)]
    if not isinstance(base, str):
        raise ConfigError(f"{path}: `base:` must name one config file (e.g. base: mask_drawn.yaml), not {base!r}")
    base_path = path.parent / base
    if base_path.resolve() in (*seen, path.resolve()):
        raise ConfigError(f"{path}: `base: {base}` leads back to itself; the last base in a chain has no base:")
    if not base_path.is_file():
        raise ConfigError(
            f"{path} builds on `base: {base}`, which is not at {base_path}; keep the two files side by side "
            "or give base: a path relative to this file"
        )
    return [*_read_with_bases(base_path, (*seen, path.resolve())), (path, loaded)]


def to_dict(cfg: Config) -> dict:
    """Plain nested dict (for checkpoints and run folders)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def from_dict(data: dict) -> Config:
    """Inverse of `to_dict`, tolerant of keys added in later versions being absent."""
    if not isinstance(data, dict):
        raise ConfigError(f"a model's config must be a mapping of sections, not {type(data).__name__}")
    faces = data.get("faces")
    if isinstance(faces, dict) and "detector" not in faces:  # saved before the key existed: MTCNN framed it
        data = {**data, "faces": {**faces, "detector": "auto"}}
    cfg = _merge(OmegaConf.structured(Config), OmegaConf.create(data), "a checkpoint")
    typed: Config = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    validate(typed)  # a checkpoint or sidecar edited by hand (std 0, say) is refused like a config file
    return typed


def with_overrides(cfg: Config | dict, values: dict, origin: str) -> Config:
    """`cfg` with dotted-key `values` applied and validated; an unknown key names `origin` (e.g. per_task.mask)
    and the valid keys beside it. The one implementation of dotted overrides outside the command line."""
    base = _merge(
        OmegaConf.structured(Config), OmegaConf.create(cfg if isinstance(cfg, dict) else to_dict(cfg)), origin
    )
    merged = _merge(base, [f"{k}={v}" for k, v in values.items()], origin)
    out: Config = OmegaConf.to_object(merged)  # type: ignore[assignment]
    validate(out)
    return out


def config_yaml(cfg: Config) -> str:
    """The resolved config as YAML: every key, its base files and overrides applied (what a run folder keeps)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    write_text(path, config_yaml(cfg))
