"""Reading W&B's YAML config files, for ``config-defaults.yaml`` and ``wandb.init(config="f.yaml")``."""

import os

from wandb.errors import Error


class ConfigError(Error):
    pass


def dict_from_config_file(filename, must_exist=False):
    """The file's ``{key: {value: v}}`` (or plain ``{key: v}``) entries as ``{key: v}``; None if absent.

    Needs PyYAML, which Sweeper does not ship: without it, the file is ignored with a warning.
    """
    if not os.path.exists(filename):
        if must_exist:
            raise ConfigError("config file %s doesn't exist" % filename)
        return None
    try:
        import yaml
    except ImportError:
        from sweeper._wandb_rows import termwarn

        termwarn("%s is ignored: reading YAML config files needs PyYAML (pip install pyyaml)" % filename)
        return None
    try:
        with open(filename) as f:
            loaded = yaml.safe_load(f)
    except OSError:
        raise ConfigError("Couldn't read config file: %s" % filename)
    except yaml.YAMLError:
        raise ConfigError("Invalid YAML in config yaml")
    if loaded is None:
        return None
    version = loaded.pop("wandb_version", None)
    if version is not None and version != 1:
        raise ConfigError("Unknown config version")
    data = {}
    for k, v in loaded.items():
        if isinstance(v, dict) and "value" in v:
            data[k] = v["value"]
        else:
            data[k] = v
    return data


def merge_dicts(dest, src):
    """Recursively merge ``src`` into ``dest``, as lodash's _.merge does."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dest.get(key), dict):
            merge_dicts(dest[key], value)
        else:
            dest[key] = value
    return dest
