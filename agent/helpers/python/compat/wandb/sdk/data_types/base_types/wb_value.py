"""The base classes W&B's media types share; integrations test for them with isinstance."""


class WBValue:
    """A value ``wandb.log`` cannot send as a number. Sweeper keeps what is cheap to keep as a file in
    the run's folder (``_save``) and records a reference to it in the run's history file."""

    _log_type = "wbvalue"

    def _save(self, run, key, step):
        """Write the value's file(s) under ``run.dir``; return a JSON-able reference, or None."""
        return None


class Media(WBValue):
    _log_type = "media"
