"""``wandb.sdk``: where W&B keeps its classes; integrations import them from these paths."""

from wandb.sdk import lib  # noqa: F401
from wandb.sdk import data_types  # noqa: F401
from wandb.sdk import wandb_settings  # noqa: F401
from wandb.sdk import wandb_config  # noqa: F401
from wandb.sdk import wandb_summary  # noqa: F401
from wandb.sdk import artifacts  # noqa: F401
from wandb.sdk import wandb_run  # noqa: F401
from wandb.sdk import wandb_init  # noqa: F401
from wandb.sdk.wandb_config import Config  # noqa: F401
from wandb.sdk.wandb_settings import Settings  # noqa: F401
from wandb.sdk.wandb_summary import Summary  # noqa: F401
from wandb.sdk.wandb_run import Run  # noqa: F401
from wandb.sdk.wandb_init import init  # noqa: F401
from wandb.sdk.artifacts.artifact import Artifact  # noqa: F401
