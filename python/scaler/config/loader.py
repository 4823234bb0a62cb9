"""``load_config(SectionClass, toml_path, argparse_namespace, section_name)`` as in Scaler 1.12.5.

Values come from the TOML file (the whole file, or one ``[section]`` of it), then from the
namespace's attributes that are not None, which win. Strings become the field's type when it is a
``ConfigType`` (``from_string``) or an enum (by member name); lists become tuples for tuple fields.
"""

import argparse
import dataclasses
import enum
from typing import Any, Dict, Optional, Type, TypeVar, Union, get_args, get_origin

from scaler.config.mixins import ConfigType

try:
    import tomllib as _toml
except ImportError:  # Python < 3.11
    try:
        import tomli as _toml  # type: ignore[no-redef]
    except ImportError:
        _toml = None  # type: ignore[assignment]

T = TypeVar("T")


def _read_toml(path: str) -> Dict[str, Any]:
    if _toml is None:
        raise ImportError("reading a TOML file needs Python 3.11 or the tomli package")
    try:
        with open(path, "rb") as f:
            try:
                return _toml.load(f)
            except _toml.TOMLDecodeError as e:
                raise ValueError(f"Error parsing TOML file at {path}: {e}") from e
    except FileNotFoundError:
        raise FileNotFoundError(f"Configuration file not found at: {path}") from None


def _target_type(annotation):
    """The type a value is converted to: the non-None member of Optional[X], else the annotation."""
    if get_origin(annotation) is Union:
        members = [member for member in get_args(annotation) if member is not type(None)]
        if members:
            return members[0]
    return annotation


def _convert(annotation, value):
    target = _target_type(annotation)
    if isinstance(value, str) and isinstance(target, type):
        if issubclass(target, ConfigType) and not isinstance(value, target):
            return target.from_string(value)
        if issubclass(target, enum.Enum):
            try:
                return target[value]
            except KeyError:
                raise ValueError(f"'{value}' is not a valid member for {target.__name__}") from None
    if isinstance(value, list) and get_origin(annotation) is tuple:
        return tuple(value)
    return value


def load_config(
    config_class: Type[T], config_path: Optional[str], args: argparse.Namespace, section_name: Optional[str] = None
) -> T:
    if not dataclasses.is_dataclass(config_class):
        raise TypeError(f"{config_class.__name__} is not a dataclass and cannot be used with this config loader.")

    values: Dict[str, Any] = {}
    if config_path:
        document = _read_toml(config_path)
        values.update(document.get(section_name, {}) if section_name else document)
    values.update({key: value for key, value in vars(args).items() if value is not None})

    fields = dataclasses.fields(config_class)
    unknown = set(values) - {f.name for f in fields} - {"config"}
    if unknown:
        raise ValueError(f"Unknown configuration key(s) for {config_class.__name__}: {', '.join(sorted(unknown))}")

    kwargs = {f.name: _convert(f.type, values[f.name]) for f in fields if f.name in values}
    missing = [
        f.name
        for f in fields
        if f.init
        and f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ValueError(
            f"Missing required configuration arguments: {', '.join(missing)}. "
            f"Please provide them via command line or a TOML config file."
        )
    return config_class(**kwargs)  # type: ignore[return-value]
