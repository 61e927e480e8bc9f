"""What serving a model fails with, in the service's terms; only the HTTP layer maps them to statuses."""


class ModelError(Exception):
    """A model cannot serve a request; retry_after (seconds) says when trying again may succeed."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class UnknownModel(ModelError):
    """A model name nothing here serves."""


class NotServable(ModelError):
    """A known model this installation cannot serve (its graphs are absent and cannot be made here)."""


class ModelUnavailable(ModelError):
    """A model whose files cannot be had now (missing, download failed or off); it may be later."""
