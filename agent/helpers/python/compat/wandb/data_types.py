"""Old import path of W&B's media types (``from wandb.data_types import Table``)."""

from wandb.sdk.data_types._media import *  # noqa: F401,F403
from wandb.sdk.data_types._media import __all__  # noqa: F401
