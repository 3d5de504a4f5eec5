"""``wandb.config``: W&B's Config (wandb/sdk/wandb_config.py), with its semantics.

- Attribute and item access; nested values are plain dicts. ``keys()``, ``items()`` and
  ``as_dict()`` leave out keys that start with ``_`` (such as ``_wandb``).
- A key the sweep set is locked: a later ``config.x = v`` or ``config.update({"x": v})`` is ignored
  with W&B's warning, ``Config item 'x' was locked by 'sweep' (ignored update).``
- Changing an unlocked key's value raises ConfigError unless ``allow_val_change=True`` (per call,
  or for the run with ``wandb.init(allow_val_change=True)``).
- Keys lose leading and trailing ``-`` (argparse names); values are made JSON-friendly: tuples
  become lists, numpy scalars Python numbers, other objects their ``str()``.
"""

import wandb
from wandb.sdk.lib import config_util
from wandb.util import json_friendly_val


def parse_config(params, exclude=None, include=None):
    """W&B's wandb_helper.parse_config: a dict, argparse Namespace, absl flags, or YAML file name."""
    if exclude and include:
        raise wandb.errors.UsageError("Expected at most only one of exclude or include")
    if isinstance(params, str):
        params = config_util.dict_from_config_file(params, must_exist=True) or {}
    params = _to_dict(params)
    if include:
        params = {k: v for k, v in params.items() if k in include}
    if exclude:
        params = {k: v for k, v in params.items() if k not in exclude}
    return params


def _to_dict(params):
    if isinstance(params, dict):
        return params
    if isinstance(params, Config):
        return dict(params._items)
    mod = type(params).__module__ or ""
    if mod.startswith("absl.flags"):
        return {name: params[name].value for name in dir(params)}
    if hasattr(params, "keys") and hasattr(params, "__getitem__"):
        return {k: params[k] for k in params.keys()}
    if not hasattr(params, "__dict__"):
        raise TypeError("config must be a dict or have a __dict__ attribute.")
    return dict(vars(params))


class Config:
    def __init__(self):
        object.__setattr__(self, "_items", dict())
        object.__setattr__(self, "_locked", dict())
        object.__setattr__(self, "_users", dict())
        object.__setattr__(self, "_users_inv", dict())
        object.__setattr__(self, "_users_cnt", 0)
        object.__setattr__(self, "_callback", None)
        object.__setattr__(self, "_allow_val_change", None)

    def _set_callback(self, cb):
        object.__setattr__(self, "_callback", cb)

    def __repr__(self):
        return str(dict(self))

    def keys(self):
        return [k for k in self._items.keys() if not str(k).startswith("_")]

    def _as_dict(self):
        return self._items

    def as_dict(self):
        return dict(self)

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def _check_locked(self, key, ignore_locked=False):
        locked = self._locked.get(key)
        if locked is not None:
            if not ignore_locked:
                from sweeper._wandb_rows import termwarn

                termwarn("Config item '%s' was locked by '%s' (ignored update)." % (key, self._users_inv[locked]))
            return True
        return False

    def __setitem__(self, key, val):
        if self._check_locked(key):
            return
        key, val = self._sanitize(key, val)
        self._items[key] = val
        if self._callback:
            self._callback(key=key, val=val)

    def items(self):
        return [(k, v) for k, v in self._items.items() if not str(k).startswith("_")]

    __setattr__ = __setitem__

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self.__getitem__(key)
        except KeyError as ke:
            raise AttributeError("%r object has no attribute %r" % (self.__class__, key)) from ke

    def __contains__(self, key):
        return key in self._items

    def _update(self, d, allow_val_change=None, ignore_locked=None):
        parsed = parse_config(d)
        locked_keys = set()
        for key in list(parsed):
            if self._check_locked(key, ignore_locked=ignore_locked):
                locked_keys.add(key)
        sanitized = self._sanitize_dict(parsed, allow_val_change, ignore_keys=locked_keys)
        self._items.update(sanitized)
        return sanitized

    def update(self, d, allow_val_change=None):
        sanitized = self._update(d, allow_val_change)
        if self._callback:
            self._callback(data=sanitized)

    def get(self, *args):
        return self._items.get(*args)

    def persist(self):
        if self._callback:
            self._callback(data=self._as_dict())

    def setdefaults(self, d):
        d = parse_config(d)
        d = {k: v for k, v in d.items() if k not in self._items}
        d = self._sanitize_dict(d)
        self._items.update(d)
        if self._callback:
            self._callback(data=d)

    def _get_user_id(self, user):
        if user not in self._users:
            self._users[user] = self._users_cnt
            self._users_inv[self._users_cnt] = user
            object.__setattr__(self, "_users_cnt", self._users_cnt + 1)
        return self._users[user]

    def update_locked(self, d, user=None, _allow_val_change=None):
        """Shallow-update with ``d`` and lock its keys."""
        num = self._get_user_id(user)
        for k, v in d.items():
            k, v = self._sanitize(k, v, allow_val_change=_allow_val_change)
            self._locked[k] = num
            self._items[k] = v
        if self._callback:
            self._callback(data=d)

    def merge_locked(self, d, user=None, _allow_val_change=None):
        """Recursively merge ``d`` in and lock its keys (how a sweep's values go on top of defaults)."""
        num = self._get_user_id(user)
        callback_d = {}
        for k, v in d.items():
            k, v = self._sanitize(k, v, allow_val_change=_allow_val_change)
            self._locked[k] = num
            if k in self._items and isinstance(self._items[k], dict) and isinstance(v, dict):
                self._items[k] = config_util.merge_dicts(self._items[k], v)
            else:
                self._items[k] = v
            callback_d[k] = self._items[k]
        if self._callback:
            self._callback(data=callback_d)

    def _sanitize_dict(self, config_dict, allow_val_change=None, ignore_keys=None):
        sanitized = {}
        for k, v in config_dict.items():
            if ignore_keys and k in ignore_keys:
                continue
            k, v = self._sanitize(k, v, allow_val_change)
            sanitized[k] = v
        return sanitized

    def _sanitize(self, key, val, allow_val_change=None):
        from wandb.sdk.data_types.base_types.wb_value import WBValue

        if isinstance(val, WBValue):
            raise ValueError("WBValue objects cannot be added to the run config")
        if allow_val_change is None:
            allow_val_change = self._allow_val_change
        if isinstance(key, str):
            key = key.strip("-")
        val = json_friendly_val(val)
        if not allow_val_change:
            if key in self._items and val != self._items[key]:
                raise config_util.ConfigError(
                    'Attempted to change value of key "%s" from %s to %s\n'
                    "If you really want to do this, pass allow_val_change=True to config.update()" % (key, self._items[key], val)
                )
        return key, val


class ConfigStatic:
    def __init__(self, config):
        object.__setattr__(self, "__dict__", dict(config))

    def __setattr__(self, name, value):
        raise AttributeError("Error: wandb.run.config_static is a readonly object")

    def __setitem__(self, key, val):
        raise AttributeError("Error: wandb.run.config_static is a readonly object")

    def keys(self):
        return self.__dict__.keys()

    def __getitem__(self, key):
        return self.__dict__[key]

    def __str__(self):
        return str(self.__dict__)
