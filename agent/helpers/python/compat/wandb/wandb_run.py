"""Old import path of the Run class (``from wandb.wandb_run import Run``)."""

from wandb.sdk.wandb_run import Run  # noqa: F401
