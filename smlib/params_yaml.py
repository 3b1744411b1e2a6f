"""Reading params YAML: duplicate keys refused, 1e-4 read as a number, one ParamsError naming the source."""
from __future__ import annotations

import re
from pathlib import Path

import yaml


class ParamsError(ValueError):
    """A params file or override is malformed; the message names the source and the key."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                    key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)

# YAML 1.1 reads 1e-4 (no dot) as a string; people type it as a number. Accept the float spellings
# (1e-4, 1E5, .5e3, inf stays refused by the range checks) wherever a plain scalar looks like one.
_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$")
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def parse_yaml(text: str, source: str):
    """YAML text as data, with one ParamsError naming the source for bad syntax or duplicate keys."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        what = getattr(e, "problem", None) or " ".join(str(e).split())
        raise ParamsError(f"{source}: not valid YAML: {what}{where}") from None


def _read_yaml(path: Path, may_be_empty: bool = True) -> dict:
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise ParamsError(f"{path}: cannot be read ({e.strerror})") from None
    loaded = parse_yaml(text, str(path))
    if loaded is None:
        if not may_be_empty:
            raise ParamsError(f"{path}: the file is empty (no keys; it must hold a mapping of params)")
        return {}
    if not isinstance(loaded, dict):
        raise ParamsError(f"{path}: top level must be a mapping, got {type(loaded).__name__}")
    return loaded
