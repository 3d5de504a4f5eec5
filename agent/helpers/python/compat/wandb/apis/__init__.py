"""W&B's public API reads runs from W&B's servers; there are none behind Sweeper's module."""

from wandb.errors import UsageError


class Api:
    def __init__(self, *args, **kwargs):
        raise UsageError(
            "wandb.Api() reads from W&B's servers, which Sweeper's wandb compatibility module does not "
            "talk to; use 'sweeper watch --json' or 'sweeper logs' for a sweep's results"
        )


PublicApi = Api
