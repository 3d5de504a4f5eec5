"""What ``wandb.config``, ``wandb.log`` and the like are before ``wandb.init()``: using them raises
W&B's error, ``You must call wandb.init() before wandb.log()``."""

import wandb


class PreInitObject:
    def __init__(self, name):
        object.__setattr__(self, "_name", name)

    def __getitem__(self, key):
        raise wandb.Error("You must call wandb.init() before %s[%r]" % (self._name, key))

    def __setitem__(self, key, value):
        raise wandb.Error("You must call wandb.init() before %s[%r]" % (self._name, key))

    def __setattr__(self, key, value):
        raise wandb.Error("You must call wandb.init() before %s.%s" % (self._name, key))

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        raise wandb.Error("You must call wandb.init() before %s.%s" % (self._name, key))

    def __repr__(self):
        return "<%s before wandb.init()>" % self._name


class PreInitCallable:
    """Calls the method on the current run when there is one (a reference taken before init),
    else raises W&B's error."""

    def __init__(self, name):
        self._name = name
        self.__name__ = name.rsplit(".", 1)[-1]

    def __call__(self, *args, **kwargs):
        run = wandb.run
        if run is not None:
            return getattr(run, self.__name__)(*args, **kwargs)
        raise wandb.Error("You must call wandb.init() before %s()" % self._name)
