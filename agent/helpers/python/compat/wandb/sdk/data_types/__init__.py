"""``wandb.sdk.data_types``: W&B's media types (see ``_media``)."""

from wandb.sdk.data_types._media import *  # noqa: F401,F403
