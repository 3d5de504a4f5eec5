"""``wandb.sdk.artifacts``: local-file artifacts."""

from wandb.sdk.artifacts.artifact import Artifact  # noqa: F401
