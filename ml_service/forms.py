"""Multipart form helpers: parse the body and read file/text parts with 400s for malformed input."""

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from ml_service.errors import bad_request


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=4, max_fields=16)
    except Exception as error:  # malformed multipart in any of its many ways is the client's fault
        detail = getattr(error, "detail", None) or getattr(error, "message", None) or str(error)
        raise bad_request(f"the body is not valid multipart/form-data: {detail}") from None


async def form_bytes(form: FormData, name: str) -> bytes | None:
    value = form.get(name)
    if value is None:
        return None
    if isinstance(value, UploadFile):
        return await value.read()
    raise bad_request(f"'{name}' must be sent as a file part (with a filename), not as a text field")


async def form_text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    try:
        return (await value.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"'{name}' is not UTF-8 text") from None
