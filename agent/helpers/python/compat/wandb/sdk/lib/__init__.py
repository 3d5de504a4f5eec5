"""``wandb.sdk.lib``: the pieces integrations import from here."""

from wandb.sdk.lib.disabled import RunDisabled, SummaryDisabled  # noqa: F401
