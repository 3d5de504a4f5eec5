"""``run.summary``: W&B's Summary (wandb/sdk/wandb_summary.py).

By default each key holds the last value logged to it; ``define_metric(name, summary=...)``
changes that (``{"min": ...}``, ``"none"``, ...). Writes (``summary["best"] = v``,
``summary.update({...})``, also on nested dicts) set the value; their numbers are also reported
to Sweeper as a point of that metric at the run's current step, so a value written only to the
summary still reaches the leaderboard.
"""


class SummaryDict:
    """dict-like; nested dicts come back wrapped, so writes into them reach the summary."""

    def _as_dict(self):
        raise NotImplementedError

    def _write(self, path, value):
        raise NotImplementedError

    def _remove(self, path):
        raise NotImplementedError

    def _path(self, key):
        return (key,)

    def keys(self):
        return [k for k in self._as_dict().keys() if k != "_wandb"]

    def items(self):
        return [(k, self[k]) for k in self.keys()]

    def values(self):
        return [self[k] for k in self.keys()]

    def get(self, key, default=None):
        return self._as_dict().get(key, default)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def __contains__(self, key):
        return key in self._as_dict()

    def __getitem__(self, key):
        item = self._as_dict()[key]
        if isinstance(item, dict):
            sub = SummarySubDict()
            object.__setattr__(sub, "_root", self._root_summary())
            object.__setattr__(sub, "_prefix", self._path(key))
            return sub
        return item

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setitem__(self, key, val):
        self.update({key: val})

    __setattr__ = __setitem__

    def __delitem__(self, key):
        self._remove(self._path(key))

    __delattr__ = __delitem__

    def update(self, d=None, **kwargs):
        items = dict(d if isinstance(d, dict) else vars(d) if d is not None else {})
        items.update(kwargs)
        for key, value in items.items():
            self._write(self._path(key), value)

    def __repr__(self):
        return repr(self._as_dict())

    def _root_summary(self):
        return self


class Summary(SummaryDict):
    def __init__(self, run):
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_items", {})

    def _as_dict(self):
        return self._items

    def _write(self, path, value):
        self._run._summary_write(path, value)

    def _remove(self, path):
        d = self._items
        for p in path[:-1]:
            d = d[p]
        del d[path[-1]]


class SummarySubDict(SummaryDict):
    def _as_dict(self):
        d = self._root._items
        for p in self._prefix:
            d = d[p]
        return d

    def _path(self, key):
        return self._prefix + (key,)

    def _write(self, path, value):
        self._root._write(path, value)

    def _remove(self, path):
        self._root._remove(path)

    def _root_summary(self):
        return self._root
