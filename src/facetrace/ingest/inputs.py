"""Turn what the user typed (files, folders, list files, ``file://`` URLs) into images to read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from facetrace.catalog.repository import Place

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
#: A file with one of these suffixes lists inputs, one per line: ``PATH_OR_FILE_URL[<TAB>PAGE_URL]``.
LIST_SUFFIXES = frozenset({".txt", ".lst"})


@dataclass(frozen=True, slots=True)
class InputImage:
    """An image file to ingest and the provenance to record for it."""

    path: Path
    location: str  # as recorded: the absolute path, or the file:// URL as given
    page_url: str | None = None


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


def expand_inputs(arguments: Iterable[str]) -> Iterator[InputImage | InputProblem]:
    """Every image named by ``arguments``, folders walked recursively in a stable order."""
    for argument in arguments:
        yield from _expand(argument, page_url=None, base=Path.cwd(), from_list=False)


def _expand(
    argument: str, page_url: str | None, base: Path, from_list: bool
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
            yield InputImage(found, str(found), page_url)
    elif not path.is_file():
        yield InputProblem(location, "no such file or folder")
    elif path.suffix.lower() in LIST_SUFFIXES and not from_list:
        yield from _expand_list(path)
    else:
        yield InputImage(path, location, page_url)


def _expand_list(list_file: Path) -> Iterator[InputImage | InputProblem]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        yield InputProblem(str(list_file), f"cannot read list file: {exc}")
        return
    for line in lines:
        entry, _, page_url = line.strip().partition("\t")
        if entry and not entry.startswith("#"):
            yield from _expand(entry.strip(), page_url.strip() or None, list_file.parent, from_list=True)
