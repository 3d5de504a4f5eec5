"""``wandb.Settings``: keeps what it is given. Sweeper's module reads ``mode``, ``dir`` and
``silent`` from it; every other setting is accepted and has no effect."""


class Settings:
    def __init__(self, **kwargs):
        object.__setattr__(self, "_values", dict(kwargs))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._values.get(name)

    def __setattr__(self, name, value):
        self._values[name] = value

    def update(self, settings=None, **kwargs):
        if isinstance(settings, Settings):
            self._values.update(settings._values)
        elif isinstance(settings, dict):
            self._values.update(settings)
        self._values.update(kwargs)

    def to_dict(self):
        return dict(self._values)

    def __iter__(self):
        return iter(self._values.items())

    def __repr__(self):
        return "Settings(%s)" % ", ".join("%s=%r" % kv for kv in self._values.items())
