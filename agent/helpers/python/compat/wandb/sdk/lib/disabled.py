"""W&B's do-nothing run, which integrations test for with isinstance."""


class SummaryDisabled(dict):
    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__

    def __getattr__(self, key):
        return self[key]


class RunDisabled:
    """A run on which every call does nothing. Sweeper's wandb module never returns one: under
    the compatibility module every mode reports to Sweeper."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None
