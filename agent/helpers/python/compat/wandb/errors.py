"""W&B's exception classes (``wandb.errors``), with the same hierarchy."""


class Error(Exception):
    """Base W&B error."""

    def __init__(self, message="", context=None):
        super().__init__(message)
        self.message = message
        self.context = context


class CommError(Error):
    """Error communicating with W&B servers."""

    def __init__(self, msg="", exc=None):
        super().__init__(msg)
        self.exc = exc


class AuthenticationError(CommError):
    """Raised when authentication fails."""


class UsageError(Error):
    """Raised when an invalid usage of the SDK API is detected."""


class UnsupportedError(UsageError):
    """Raised when trying to use a feature that is not supported."""


class WandbCoreNotAvailableError(Error):
    """Raised when wandb core is not available."""
