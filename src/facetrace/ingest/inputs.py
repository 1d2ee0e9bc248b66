"""Turn what the user typed (files, folders, list files, ``file://`` URLs) into images to read.

A file is read through the descriptor it was opened as: its type and size are checked with
``fstat`` on that descriptor and at most the size cap (plus one byte) is ever read, so a FIFO, a
device or a sparse 1 GiB file costs nothing. An image listed inside a confining folder (the
server's import folder) is opened one directory at a time from that folder, every step with
``O_NOFOLLOW``: a file or directory swapped for a link after the listing is refused, not followed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from facetrace.catalog.repository import Place

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
#: A file with one of these suffixes lists inputs, one per line: ``PATH_OR_FILE_URL[<TAB>PAGE_URL]``.
LIST_SUFFIXES = frozenset({".txt", ".lst"})
#: The only schemes a page URL may have: it is shown to investigators as a link.
WEB_SCHEMES = ("http", "https")
_READ_CHUNK = 1024 * 1024
_NO_LINKS = os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class InputImage:
    """An image file to ingest and the provenance to record for it.

    ``max_bytes``: the largest file read (FACETRACE_MAX_IMAGE_BYTES). ``within``: the folder the
    file must be read from without following any link (None: links are followed, as the
    operator's own command line may)."""

    path: Path
    location: str  # as recorded: the absolute path, or the file:// URL as given
    page_url: str | None = None
    max_bytes: int = field(kw_only=True, compare=False)
    within: Path | None = field(default=None, kw_only=True, compare=False)

    def read(self) -> bytes:
        """The file's bytes; :class:`OSError` (with a readable ``strerror``) for a file that is not
        a regular file, is larger than ``max_bytes``, or is reached through a link inside ``within``."""
        descriptor = self._open()
        try:
            return _read_capped(descriptor, self.max_bytes)
        finally:
            os.close(descriptor)

    def _open(self) -> int:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
        if self.within is None:
            return os.open(self.path, flags)
        return _open_beneath(self.within, self.path.relative_to(self.within), flags)


def _open_beneath(root: Path, relative: Path, flags: int) -> int:
    """Open ``root/relative`` walking down from ``root`` one opened directory at a time, following
    no link on the way (``openat`` with ``O_NOFOLLOW``), so nothing swapped in can lead outside."""
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | _NO_LINKS)  # ``root`` is resolved
    try:
        for part in relative.parts[:-1]:
            try:
                below = os.open(part, os.O_RDONLY | os.O_DIRECTORY | _NO_LINKS, dir_fd=directory)
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    message = f"{part!r} is no longer a folder (a link?): not followed"
                    raise OSError(exc.errno, message) from None
                raise
            os.close(directory)
            directory = below
        try:
            return os.open(relative.name, flags | _NO_LINKS, dir_fd=directory)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OSError(exc.errno, "the file is now a link: links are not followed here") from None
            raise
    finally:
        os.close(directory)


def _read_capped(descriptor: int, max_bytes: int) -> bytes:
    """Read a regular file's descriptor, refusing it before reading when ``fstat`` says it is too
    large, and never reading more than ``max_bytes + 1`` bytes should it grow meanwhile."""
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or folder): not read")
    if status.st_size > max_bytes:
        raise OSError(errno.EFBIG, f"{status.st_size:,} bytes, more than the {max_bytes:,} allowed")
    chunks: list[bytes] = []
    remaining = max_bytes + 1
    while remaining > 0 and (chunk := os.read(descriptor, min(remaining, _READ_CHUNK))):
        chunks.append(chunk)
        remaining -= len(chunk)
    if remaining <= 0:
        raise OSError(
            errno.EFBIG,
            f"more than the {max_bytes:,} bytes allowed once read (its size changed or was misreported)",
        )
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class FetchedImage:
    """Image bytes already fetched (by the crawler) and where they were found."""

    place: Place  # the image URL, its page, and what the page and server said about it
    data: bytes

    @property
    def location(self) -> str:
        return self.place.location

    @property
    def page_url(self) -> str | None:
        return self.place.page_url


@dataclass(frozen=True, slots=True)
class InputProblem:
    """An input that names nothing ingestible; reported, never fatal."""

    location: str
    message: str


def expand_inputs(arguments: Iterable[str], *, max_bytes: int) -> Iterator[InputImage | InputProblem]:
    """Every image named by ``arguments``, folders walked recursively in a stable order; none of
    them will read more than ``max_bytes``."""
    for argument in arguments:
        yield from _expand(argument, page_url=None, base=Path.cwd(), from_list=False, max_bytes=max_bytes)


def _expand(
    argument: str, page_url: str | None, base: Path, from_list: bool, max_bytes: int
) -> Iterator[InputImage | InputProblem]:
    scheme = urlparse(argument).scheme
    if scheme == "file":
        path = Path(url2pathname(unquote(urlparse(argument).path)))
        location = argument
    elif len(scheme) > 1:  # one letter would be a Windows drive
        yield InputProblem(
            argument, f"{scheme}:// inputs are not read by ingest; only files and file:// URLs"
        )
        return
    else:
        path = (base / argument).resolve()
        location = str(path)
    if path.is_dir():
        for found in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            yield InputImage(found, str(found), page_url, max_bytes=max_bytes)
    elif not path.is_file():
        yield InputProblem(location, "no such file or folder")
    elif path.suffix.lower() in LIST_SUFFIXES and not from_list:
        yield from _expand_list(path, max_bytes)
    else:
        yield InputImage(path, location, page_url, max_bytes=max_bytes)


def _expand_list(list_file: Path, max_bytes: int) -> Iterator[InputImage | InputProblem]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        yield InputProblem(str(list_file), f"cannot read list file: {exc}")
        return
    for line in lines:
        entry, _, page_url = line.strip().partition("\t")
        entry, page_url = entry.strip(), page_url.strip()
        if not entry or entry.startswith("#"):
            continue
        if page_url and urlparse(page_url).scheme.lower() not in WEB_SCHEMES:
            yield InputProblem(entry, f"page URL {page_url[:80]!r} refused: only http(s) pages are recorded")
            continue
        yield from _expand(entry, page_url or None, list_file.parent, True, max_bytes)
