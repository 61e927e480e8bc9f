"""Client-facing error type carrying an HTTP status, turned into a JSON body by the app."""


class ServiceError(Exception):
    """A request the service refuses or cannot fulfil, with the HTTP status to answer."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ServiceError:
    return ServiceError(400, message)


def unprocessable(message: str) -> ServiceError:
    return ServiceError(422, message)
