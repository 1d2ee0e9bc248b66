"""Multipart uploads read in memory, with their limits enforced while the body streams in.

Starlette's own form parser spools any file over 1 MiB to a temporary file on disk; a probe
photo must never be written to disk (it is decoded in memory and dropped), so uploads are read
here instead, with python-multipart's streaming parser. A body or file over the limit is refused
with 413 as soon as it is seen to be (from ``Content-Length``, else while reading), and a file
part that does not declare an ``image/*`` type with 415, before any byte of it is kept. The
decoder then checks the pixels.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_origin
from urllib.parse import parse_qsl

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from facetrace.server.common.state import ServerState, server_state

if TYPE_CHECKING:  # declared for type checkers only
    from python_multipart.multipart import MultipartCallbacks

#: Room for the text fields and the multipart framing, on top of the file itself.
FORM_OVERHEAD_BYTES = 256 * 1024
MAX_FIELD_BYTES = 16 * 1024
#: A login, a password change or any other form without a file: a few fields of text.
SMALL_FORM_BYTES = 64 * 1024
MAX_PARTS = 64

Model = TypeVar("Model", bound=BaseModel)


class BodyTooLargeError(HTTPException):
    """A body crossed its route's limit while it was read (raised by the app-wide
    :class:`~facetrace.server.common.body_limit.BodyLimitMiddleware`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit:,} bytes")


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str | None
    content_type: str
    data: bytes


@dataclass(slots=True)
class UploadedForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def parse(self, model: type[Model]) -> Model:
        """The text fields validated as ``model``; list fields take every value, others the last.

        Empty values count as absent (what a browser sends for a blank input); a validation
        error is answered like FastAPI's own (422).
        """
        values: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            given = [value for value in self.fields.get(name, []) if value != ""]
            if given:
                values[name] = given if get_origin(info.annotation) is list else given[-1]
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
            ) from None

    def value(self, name: str, model: type[BaseModel], model_field: str | None = None) -> Any:
        """The text field ``name`` validated as ``model``'s field ``model_field`` (default: the same
        name), with its type and bounds, so that a form obeys the API's own limits.

        A blank or absent value is the model's default; an invalid one is answered 422 naming ``name``.
        """
        info = model.model_fields[model_field or name]
        given = [value.strip() for value in self.fields.get(name, []) if value.strip()]
        if not given:
            if info.is_required():
                missing = {"type": "missing", "loc": ("body", name), "msg": "Field required"}
                raise RequestValidationError([missing])
            return info.get_default(call_default_factory=True)
        try:
            # The field's type and constraints, put together at run time: no static type to check.
            field_type: Any = Annotated[(info.annotation, *info.metadata)]
            return TypeAdapter(field_type).validate_python(given[-1])
        except ValidationError as exc:
            raise RequestValidationError(
                [{**error, "loc": ("body", name, *error["loc"])} for error in exc.errors()]
            ) from None


@dataclass(slots=True)
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    content_type: str = ""
    data: bytearray = field(default_factory=bytearray)


class _FormReader:
    """python-multipart callbacks that collect the parts and stop at the first limit crossed."""

    def __init__(self, max_file_bytes: int, file_types: tuple[str, ...]) -> None:
        self.max_file_bytes = max_file_bytes
        self.file_types = file_types
        self.form = UploadedForm()
        self.parts = 0
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise HTTPException(413, f"a form may hold at most {MAX_PARTS} fields")
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._part.headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        part = self._part
        _, options = parse_options_header(part.headers.get(b"content-disposition"))
        if b"name" not in options:
            raise HTTPException(400, "every form part needs a name (Content-Disposition)")
        part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            return
        part.filename = options[b"filename"].decode("utf-8", "replace")
        declared, _ = parse_options_header(part.headers.get(b"content-type"))
        part.content_type = declared.decode("latin-1")
        if not self.file_types:
            raise HTTPException(415, f"this form takes no files (part {part.name!r} is one)")
        if not part.content_type.startswith(self.file_types):
            raise HTTPException(
                415,
                f"{part.name!r} must be sent as {' or '.join(t + '*' for t in self.file_types)}, "
                f"not {part.content_type or 'without a content type'}",
            )
        if part.name in self.form.files:
            raise HTTPException(400, f"send one file as {part.name!r}, not several")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        part.data += data[start:end]
        if part.filename is not None and len(part.data) > self.max_file_bytes:
            raise HTTPException(
                413,
                f"{part.name!r} is larger than the limit of {self.max_file_bytes:,} bytes "
                "(FACETRACE_MAX_IMAGE_BYTES)",
            )
        if part.filename is None and len(part.data) > MAX_FIELD_BYTES:
            raise HTTPException(413, f"field {part.name!r} is longer than {MAX_FIELD_BYTES:,} bytes")

    def on_part_end(self) -> None:
        part = self._part
        if part.filename is None:
            value = _text(part.name, part.data.decode("utf-8", "replace"))
            self.form.fields.setdefault(part.name, []).append(value)
        else:
            self.form.files[part.name] = Upload(part.filename, part.content_type, bytes(part.data))


async def read_form(
    request: Request,
    *,
    max_file_bytes: int,
    file_types: tuple[str, ...] = ("image/",),
    max_body_bytes: int | None = None,
) -> UploadedForm:
    """Read a ``multipart/form-data`` body into memory, refusing it at the first limit crossed.

    The whole body may hold ``max_body_bytes`` (default: a file's limit and room for the fields).
    A form without files may come URL-encoded, as browsers send those.
    """
    media_type, options = parse_options_header(request.headers.get("content-type"))
    max_body = max_body_bytes or max_file_bytes + FORM_OVERHEAD_BYTES
    if media_type == b"application/x-www-form-urlencoded":
        return await read_urlencoded(request, min(max_body, FORM_OVERHEAD_BYTES))
    if media_type != b"multipart/form-data" or b"boundary" not in options:
        raise HTTPException(415, "send the form as multipart/form-data")
    too_large = HTTPException(
        413, f"the upload is larger than the limit of {min(max_file_bytes, max_body):,} bytes"
    )
    declared = request.headers.get("content-length", "")
    reader = _FormReader(max_file_bytes, file_types)
    parser = MultipartParser(options[b"boundary"], reader.callbacks())
    chunks = request.stream()
    received = 0
    try:
        if declared.isdigit() and int(declared) > max_body:
            raise too_large
        async for chunk in chunks:
            received += len(chunk)
            if received > max_body:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        await _discard(chunks, max_body)
        raise HTTPException(400, f"the multipart body is malformed: {exc}") from None
    except HTTPException:
        await _discard(chunks, max_body)
        raise
    return reader.form


async def refuse_unread(request: Request, refusal: HTTPException, budget: int) -> HTTPException:
    """``refusal``, for a request whose body is not to be read: what the client is still sending
    is dropped unseen, up to ``budget`` bytes, so that it can read the answer."""
    await _discard(request.stream(), budget)
    return refusal


async def read_urlencoded(request: Request, max_bytes: int) -> UploadedForm:
    """An ``application/x-www-form-urlencoded`` body of at most ``max_bytes``, read in memory."""
    too_large = HTTPException(413, f"this form may hold at most {max_bytes:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    form = UploadedForm()
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_PARTS, errors="strict")
    except UnicodeDecodeError:
        raise HTTPException(400, "the form is not valid url-encoded UTF-8") from None
    except ValueError:
        raise HTTPException(413, f"a form may hold at most {MAX_PARTS} fields") from None
    for name, value in pairs:
        form.fields.setdefault(name, []).append(_text(name, value))
    return form


def _text(name: str, value: str) -> str:
    """A text field's value; NUL is refused: nobody types it, and PostgreSQL cannot store it in text
    (a search's purpose holding one could not be recorded in the audit log)."""
    if "\x00" in value:
        raise HTTPException(422, f"field {name!r} contains a NUL character")
    return value


async def _discard(chunks: AsyncIterator[bytes], budget: int) -> None:
    """Read and drop what is left of a refused body, up to ``budget`` bytes.

    A client still sending would otherwise see the connection reset (closing a socket with
    unread data does that) instead of reading the refusal. Nothing is kept. Past the request's
    own limit, the rest is the middleware's to drop: the refusal given stands.
    """
    try:
        async for chunk in chunks:
            budget -= len(chunk)
            if budget < 0:
                return
    except BodyTooLargeError:
        return


async def image_form(request: Request, state: Annotated[ServerState, Depends(server_state)]) -> UploadedForm:
    """FastAPI dependency: a form whose files are images within FACETRACE_MAX_IMAGE_BYTES."""
    return await read_form(request, max_file_bytes=state.settings.max_image_bytes)


ImageForm = Annotated[UploadedForm, Depends(image_form)]


def multipart_openapi(
    model: type[BaseModel], files: dict[str, str], required_files: tuple[str, ...]
) -> dict[str, Any]:
    """``openapi_extra`` describing a multipart body: the ``files`` (name: description) and ``model``'s
    fields, since a form read by :func:`read_form` is invisible to FastAPI's own schema."""
    schema = model.model_json_schema()
    properties = {
        name: {"type": "string", "format": "binary", "description": description}
        for name, description in files.items()
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": properties | schema["properties"],
                        "required": [*required_files, *schema.get("required", [])],
                    }
                }
            },
        }
    }
