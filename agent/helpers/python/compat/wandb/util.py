"""The parts of ``wandb.util`` that training code and integrations reach for."""

import dataclasses
import importlib
import os
import secrets
import string
from collections.abc import Sequence

_ID_CHARS = string.ascii_lowercase + string.digits


def generate_id(length=8):
    """A random run id: ``length`` characters from a-z and 0-9, as W&B makes them."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(length))


def get_module(name, required=None, lazy=True):
    """The module, or None when it cannot be imported (``required``: raise with that message)."""
    try:
        return importlib.import_module(name)
    except Exception:
        if required:
            from wandb.errors import Error

            raise Error(required)
        return None


def to_forward_slash_path(path):
    return path.replace(os.sep, "/") if os.sep != "/" else path


def make_artifact_name_safe(name):
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return cleaned[:128]


def json_friendly(obj):
    """(value, converted): numpy scalars and arrays, tensors and the like as plain Python."""
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):
        try:
            if getattr(obj, "ndim", 1) == 0:
                return obj.item(), True
            return obj.tolist(), True
        except Exception:
            pass
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):
        try:
            arr = obj.detach().cpu()
            return (arr.item() if arr.dim() == 0 else arr.tolist()), True
        except Exception:
            pass
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace"), True
    if isinstance(obj, (set, frozenset)):
        return list(obj), True
    return obj, False


def json_friendly_val(val):
    """What W&B stores in a config: dicts and sequences recursively, other objects as str()."""
    if isinstance(val, dict):
        return {key: json_friendly_val(value) for key, value in val.items()}
    if isinstance(val, slice):
        return dict(slice_start=val.start, slice_step=val.step, slice_stop=val.stop)
    if dataclasses.is_dataclass(val) and not isinstance(val, type):
        return json_friendly_val(dataclasses.asdict(val))
    val, _ = json_friendly(val)
    if isinstance(val, Sequence) and not isinstance(val, str):
        return [json_friendly_val(v) for v in val]
    if val.__class__.__module__ not in ("builtins", "__builtin__"):
        from wandb.sdk.artifacts.artifact import Artifact

        if not isinstance(val, Artifact):
            val = str(val)
    return val
