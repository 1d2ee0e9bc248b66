"""A generated corpus of hostile image files, the same on every run (fixed seeds, no committed binaries).

Each generator family attacks one thing the decoder, the ingest pipeline or an upload route must
survive: decompression bombs of every accepted format (declared dimensions far beyond the pixel
limit, real compressed bombs, thousands of GIF frames, deep and float samples), truncations at every
fiftieth of real photos, corrupted headers and EXIF blocks, wrong extensions, polyglots, empty files
and images without pixels. :func:`build_corpus` returns them all; :func:`stratified` picks a subset
that still covers every family, for the slower paths (a server that detects faces).
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

#: Format name → file extension (the formats the decoder accepts, see facetrace.vision.decode).
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
#: Cuts per real file: one truncation at every fiftieth of its length.
CUTS = 50
#: Far beyond any sane pixel limit, yet representable in the formats' size fields.
HUGE = 65_000


@dataclass(frozen=True, slots=True)
class HostileFile:
    """One file of the corpus: its name (extension included), its bytes and the generator family."""

    name: str
    data: bytes
    family: str


def encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png(
    width: int,
    height: int,
    *,
    bit_depth: int = 8,
    colour_type: int = 2,
    raw: bytes = b"",
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A PNG put together chunk by chunk, CRCs right, whatever its header claims."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    chunks += [_png_chunk(kind, payload) for kind, payload in extra]
    chunks.append(_png_chunk(b"IDAT", zlib.compress(raw, 9)))
    chunks.append(_png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def bmp(width: int, height: int, *, bits: int = 24, compression: int = 0, pixels: bytes = b"") -> bytes:
    """A BMP with a BITMAPINFOHEADER claiming ``width`` × ``height``."""
    palette = b"\x00\x00\x00\x00\xff\xff\xff\x00" * (1 << (bits - 1)) if bits <= 8 else b""
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, compression, len(pixels), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def tiff(
    width: int,
    height: int,
    *,
    bits: int = 8,
    samples: int = 1,
    sample_format: int = 1,
    photometric: int = 1,
    compression: int = 1,
    strip: bytes = b"",
    extra_tags: Sequence[tuple[int, int, int]] = (),
) -> bytes:
    """A little-endian TIFF of one strip, every tag as given (SHORT/LONG values only)."""
    data_offset = 8
    tags = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, bits),
        (259, 3, compression),
        (262, 3, photometric),
        (273, 4, data_offset),
        (277, 3, samples),
        (278, 4, height),
        (279, 4, len(strip)),
        (339, 3, sample_format),
        *extra_tags,
    ]
    ifd_offset = data_offset + len(strip) + (len(strip) % 2)
    entries = b"".join(
        struct.pack("<HHII", tag, kind, 1, value)
        if kind == 4
        else struct.pack("<HHIHH", tag, kind, 1, value, 0)
        for tag, kind, value in sorted(tags)
    )
    ifd = struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + strip + b"\x00" * (len(strip) % 2) + ifd


def gif(width: int, height: int, *, frames: int = 1, frame_size: tuple[int, int] = (1, 1)) -> bytes:
    """A GIF89a with a two-colour table and ``frames`` one-pixel-of-data frames of ``frame_size``."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    fw, fh = frame_size
    # One pixel of index 0 in LZW (minimum code size 2): clear, 0, end → 0x44 0x01.
    frame = (
        b"\x21\xf9\x04\x00\x00\x00\x00\x00"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, fw, fh, 0)
        + b"\x02\x02\x44\x01\x00"
    )
    return head + frame * frames + b"\x3b"


def exif_block(
    entries: Sequence[tuple[int, int, int, bytes]], *, ifd_offset: int = 8, tail: bytes = b""
) -> bytes:
    """Raw EXIF (``Exif\\0\\0`` + little-endian TIFF): entries are (tag, type, count, 4-byte value)."""
    ifd = struct.pack("<H", len(entries))
    ifd += b"".join(
        struct.pack("<HHI", tag, kind, count) + value[:4].ljust(4, b"\0")
        for tag, kind, count, value in entries
    )
    ifd += struct.pack("<I", 0)
    body = b"II*\x00" + struct.pack("<I", ifd_offset)
    padding = b"\x00" * (ifd_offset - 8) if 8 <= ifd_offset < 1 << 16 else b""  # else: points past the end
    return b"Exif\x00\x00" + body + padding + ifd + tail


def jpeg_with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """``jpeg`` with an APP1 segment holding ``payload`` (split into several when over 64 KiB)."""
    segments = b""
    for start in range(0, max(len(payload), 1), 65_000):
        piece = payload[start : start + 65_000]
        segments += b"\xff\xe1" + struct.pack(">H", len(piece) + 2) + piece
    return jpeg[:2] + segments + jpeg[2:]


def _short(value: int) -> bytes:
    return struct.pack("<H", value & 0xFFFF)


# --- the families ---------------------------------------------------------------------------------


class Corpus:
    """The generators, over one real photo (the astronaut) and, when given, more real photos."""

    def __init__(self, photo: np.ndarray, real_photos: Sequence[tuple[str, bytes]] = ()) -> None:
        self.photo = photo
        self.small = np.asarray(Image.fromarray(photo).resize((128, 128)))
        self.real_photos = real_photos
        self.encoded = {fmt: encode(photo, fmt) for fmt in EXTENSIONS}
        self.encoded_small = {fmt: encode(self.small, fmt) for fmt in EXTENSIONS}

    def families(self) -> dict[str, Callable[[], Iterator[tuple[str, bytes]]]]:
        return {
            "bomb": self.bombs,
            "gif-frames": self.gif_frames,
            "deep-samples": self.deep_samples,
            "palette": self.palette_tricks,
            "truncated": self.truncations,
            "corrupt-header": self.corrupt_headers,
            "exif": self.exif,
            "wrong-extension": self.wrong_extensions,
            "polyglot": self.polyglots,
            "empty-or-zero": self.empty_and_zero,
            "noise": self.noise,
        }

    def bombs(self) -> Iterator[tuple[str, bytes]]:
        """Declared dimensions far past the pixel limit, in every format; a few real compressed bombs."""
        for w, h in ((HUGE, HUGE), (HUGE, 1), (1, HUGE), (2**31 - 1, 2**31 - 1), (20_000, 20_000)):
            yield f"png-{w}x{h}.png", png(w, h, raw=b"\0" * 1024)
            yield f"bmp-{w}x{h}.bmp", bmp(min(w, 2**31 - 1), min(h, 2**31 - 1), pixels=b"\0" * 64)
            yield f"bmp-topdown-{w}x{h}.bmp", bmp(min(w, 2**31 - 1), -min(h, 2**31 - 1), pixels=b"\0" * 64)
            yield f"tiff-{w}x{h}.tif", tiff(min(w, 2**32 - 1), min(h, 2**32 - 1), strip=b"\0" * 64)
            gw, gh = min(w, 65_535), min(h, 65_535)
            yield f"gif-{gw}x{gh}.gif", gif(gw, gh, frame_size=(gw, gh))
        # Real bombs: a few KiB that inflate to hundreds of MiB.
        yield (
            "png-zeros-12000.png",
            png(12_000, 12_000, bit_depth=1, colour_type=0, raw=b"\0" * (1_501 * 12_000)),
        )
        yield "png-rgba16-under-limit.png", png(6_000, 6_000, bit_depth=16, colour_type=6, raw=b"\0" * 4096)
        yield (
            "tiff-deflate-zeros.tif",
            tiff(10_000, 10_000, compression=8, strip=zlib.compress(b"\0" * 100_000_000, 9)),
        )
        yield (
            "tiff-rgba16-under-limit.tif",
            tiff(7_000, 7_000, bits=16, samples=4, photometric=2, strip=b"\0" * 4096),
        )
        yield "tiff-float-under-limit.tif", tiff(7_000, 7_000, bits=32, sample_format=3, strip=b"\0" * 4096)
        yield (
            "bmp-rle8.bmp",
            bmp(20_000, 20_000, bits=8, compression=1, pixels=b"\xff\x00" * 4096 + b"\x00\x01"),
        )
        for fmt, ext in (("JPEG", ".jpg"), ("WEBP", ".webp")):
            for w, h in ((HUGE, HUGE), (16_383, 16_383), (HUGE, 1)):
                yield f"{fmt.lower()}-{w}x{h}{ext}", self._resized_header(fmt, w, h)
        yield "webp-vp8x-canvas.webp", self._webp_vp8x(2**24 - 1, 2**24 - 1)

    def _resized_header(self, fmt: str, width: int, height: int) -> bytes:
        """The small astronaut re-encoded, with the frame header rewritten to claim ``width`` × ``height``."""
        data = bytearray(
            self.encoded_small[fmt] if fmt == "JPEG" else encode(self.small, "WEBP", lossless=True)
        )
        if fmt == "JPEG":
            sof = data.index(b"\xff\xc0")
            data[sof + 5 : sof + 9] = struct.pack(">HH", min(height, 65_535), min(width, 65_535))
        else:  # VP8L: 14 bits of width - 1, then 14 of height - 1, after the 0x2f signature
            at = data.index(b"VP8L") + 8
            bits = ((min(width, 16_384) - 1) & 0x3FFF) | (((min(height, 16_384) - 1) & 0x3FFF) << 14)
            rest = struct.unpack("<I", data[at + 1 : at + 5])[0] & ~0x0FFFFFFF
            data[at + 1 : at + 5] = struct.pack("<I", rest | bits)
        return bytes(data)

    def _webp_vp8x(self, width: int, height: int) -> bytes:
        inner = encode(self.small, "WEBP", lossless=True)[12:]
        vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
        vp8x += (height - 1).to_bytes(3, "little")
        body = b"WEBP" + vp8x + inner
        return b"RIFF" + struct.pack("<I", len(body)) + body

    def gif_frames(self) -> Iterator[tuple[str, bytes]]:
        """Thousands of frames, and frames larger than their screen."""
        for frames in (1_000, 10_000, 50_000):
            yield f"gif-{frames}-frames.gif", gif(64, 64, frames=frames)
        yield "gif-frame-beyond-screen.gif", gif(8, 8, frame_size=(65_535, 65_535))
        yield "gif-no-frames.gif", gif(64, 64, frames=0)

    def deep_samples(self) -> Iterator[tuple[str, bytes]]:
        """16-bit, 32-bit and float samples (NaN, infinities, constant), small enough to decode."""
        gradient = np.linspace(0, 65_535, 64 * 64).reshape(64, 64)
        floats = {
            "nan": np.full((64, 64), np.nan, dtype="<f4"),
            "inf": np.where(gradient > 30_000, np.inf, -np.inf).astype("<f4"),
            "constant": np.full((64, 64), 7.5, dtype="<f4"),
            "mixed": np.where(gradient > 10_000, np.nan, gradient).astype("<f4"),
            "huge": np.full((64, 64), 3.4e38, dtype="<f4"),
        }
        for label, array in floats.items():
            yield f"tiff-float-{label}.tif", tiff(64, 64, bits=32, sample_format=3, strip=array.tobytes())
        yield "tiff-u16.tif", tiff(64, 64, bits=16, strip=gradient.astype("<u2").tobytes())
        yield (
            "tiff-s32.tif",
            tiff(64, 64, bits=32, sample_format=2, strip=(gradient - 30_000).astype("<i4").tobytes()),
        )
        yield "tiff-rgb16.tif", tiff(64, 64, bits=16, samples=3, photometric=2, strip=b"\x10" * 64 * 64 * 6)
        yield "tiff-cmyk.tif", tiff(64, 64, samples=4, photometric=5, strip=b"\x40" * 64 * 64 * 4)
        yield "tiff-lab.tif", tiff(64, 64, samples=3, photometric=8, strip=b"\x80" * 64 * 64 * 3)
        yield "tiff-1bit.tif", tiff(64, 64, bits=1, strip=b"\xaa" * 8 * 64)
        yield "tiff-bits-7.tif", tiff(64, 64, bits=7, strip=b"\x01" * 64 * 64)
        yield "tiff-bits-0.tif", tiff(64, 64, bits=0, strip=b"\x01" * 64)
        yield "tiff-samples-200.tif", tiff(64, 64, samples=200, strip=b"\x01" * 64)
        yield "png-gray16.png", png(64, 64, bit_depth=16, colour_type=0, raw=(b"\0" + b"\xff\x00" * 64) * 64)
        yield "png-rgba16.png", png(64, 64, bit_depth=16, colour_type=6, raw=(b"\0" + b"\x80" * 512) * 64)
        yield "png-bad-depth.png", png(64, 64, bit_depth=3, colour_type=2, raw=b"\0" * 4096)
        yield "png-bad-colour-type.png", png(64, 64, colour_type=5, raw=b"\0" * 4096)
        cmyk = io.BytesIO()
        Image.fromarray(self.small).convert("CMYK").save(cmyk, format="JPEG")
        yield "jpeg-cmyk.jpg", cmyk.getvalue()
        yield "jpeg-gray.jpg", encode(self.small[:, :, 0].copy(), "JPEG")
        yield "webp-rgba.webp", encode(np.dstack([self.small, self.small[:, :, :1]]), "WEBP")
        yield "bmp-1bit.bmp", bmp(64, 64, bits=1, pixels=b"\x55" * 8 * 64)
        yield "bmp-4bit.bmp", bmp(64, 64, bits=4, pixels=b"\x12" * 32 * 64)
        yield "bmp-32bit-bitfields.bmp", bmp(64, 64, bits=32, compression=3, pixels=b"\x7f" * 4 * 64 * 64)
        yield "bmp-bits-17.bmp", bmp(64, 64, bits=17, pixels=b"\x01" * 4096)

    def palette_tricks(self) -> Iterator[tuple[str, bytes]]:
        """Indices past the palette, empty and oversized palettes and transparency tables."""
        rows = (b"\0" + b"\xc8" * 64) * 64  # index 200 in a 2-entry palette
        two = b"\x00\x00\x00\xff\xff\xff"
        yield "png-index-past-palette.png", png(64, 64, colour_type=3, raw=rows, extra=[(b"PLTE", two)])
        yield "png-empty-palette.png", png(64, 64, colour_type=3, raw=rows, extra=[(b"PLTE", b"")])
        yield "png-no-palette.png", png(64, 64, colour_type=3, raw=rows)
        yield "png-palette-300.png", png(64, 64, colour_type=3, raw=rows, extra=[(b"PLTE", b"\x01" * 900)])
        yield (
            "png-trns-long.png",
            png(64, 64, colour_type=3, raw=rows, extra=[(b"PLTE", two), (b"tRNS", b"\x00" * 256)]),
        )
        yield (
            "png-palette-16bit.png",
            png(64, 64, bit_depth=16, colour_type=3, raw=rows, extra=[(b"PLTE", two)]),
        )
        yield (
            "png-trns-rgb-wrong.png",
            png(64, 64, raw=(b"\0" + b"\x01" * 192) * 64, extra=[(b"tRNS", b"\x01")]),
        )
        no_table = bytearray(gif(64, 64))
        no_table[10] = 0  # no global colour table, yet its six bytes are left in place
        yield "gif-no-colour-table.gif", bytes(no_table)
        yield "bmp-8bit-index-past.bmp", bmp(64, 64, bits=8, pixels=b"\xff" * 64 * 64)
        colours = bytearray(bmp(64, 64, bits=8, pixels=b"\x01" * 64 * 64))
        colours[46:50] = struct.pack("<I", 2**31)  # biClrUsed: two billion colours
        yield "bmp-colours-used-huge.bmp", bytes(colours)
        yield "tiff-palette-missing.tif", tiff(64, 64, photometric=3, strip=b"\xff" * 64 * 64)

    def truncations(self) -> Iterator[tuple[str, bytes]]:
        """Every fiftieth of the astronaut in each format, and of the real photos given."""
        sources = [(f"astronaut{EXTENSIONS[fmt]}", data) for fmt, data in self.encoded.items()]
        for name, data in [*sources, *self.real_photos]:
            stem, _, ext = name.rpartition(".")
            for cut in range(1, CUTS):
                yield f"{stem}-cut{cut:02d}.{ext}", data[: len(data) * cut // CUTS]

    def corrupt_headers(self) -> Iterator[tuple[str, bytes]]:
        """Bytes flipped, zeroed or set to 0xff in the first 128 bytes (or the first tenth) of each format."""
        rng = random.Random(1_600)
        for fmt, data in self.encoded_small.items():
            for n in range(60):
                corrupted = bytearray(data)
                reach = min(len(data), max(128, len(data) // 10))
                for _ in range(rng.randint(1, 6)):
                    at = rng.randrange(reach)
                    corrupted[at] = rng.choice(
                        (0, 0xFF, corrupted[at] ^ (1 << rng.randrange(8)), rng.randrange(256))
                    )
                yield f"{fmt.lower()}-corrupt-{n:02d}{EXTENSIONS[fmt]}", bytes(corrupted)

    def exif(self) -> Iterator[tuple[str, bytes]]:
        """Orientation values out of range or of the wrong type, huge and looping EXIF blocks."""
        jpeg = self.encoded_small["JPEG"]
        for value in (0, 1, 6, 8, 9, 255, 65_535):
            blob = exif_block([(274, 3, 1, _short(value))])
            yield f"jpeg-orientation-{value}.jpg", jpeg_with_app1(jpeg, blob)
            for fmt in ("PNG", "WEBP", "TIFF"):
                yield (
                    f"{fmt.lower()}-orientation-{value}{EXTENSIONS[fmt]}",
                    encode(self.small, fmt, exif=blob),
                )
        yield "jpeg-orientation-ascii.jpg", jpeg_with_app1(jpeg, exif_block([(274, 2, 4, b"six\0")]))
        yield "jpeg-orientation-count.jpg", jpeg_with_app1(jpeg, exif_block([(274, 3, 2**31, b"\x06\0\0\0")]))
        yield (
            "jpeg-orientation-rational.jpg",
            jpeg_with_app1(jpeg, exif_block([(274, 5, 1, b"\xff\xff\xff\x7f")])),
        )
        yield "jpeg-ifd-out-of-bounds.jpg", jpeg_with_app1(jpeg, exif_block([], ifd_offset=2**31))
        looping = b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + struct.pack("<H", 1)
        looping += struct.pack("<HHII", 0x8769, 4, 1, 8) + struct.pack("<I", 8)  # EXIF IFD → itself
        yield "jpeg-ifd-loop.jpg", jpeg_with_app1(jpeg, looping)
        many = [(274 + n, 3, 1, _short(n)) for n in range(4_000)]
        yield "jpeg-exif-4000-tags.jpg", jpeg_with_app1(jpeg, exif_block(many)[:65_000])
        yield (
            "jpeg-exif-huge.jpg",
            jpeg_with_app1(jpeg, exif_block([(274, 3, 1, _short(6))], tail=b"\xab" * 4_000_000)),
        )
        yield (
            "jpeg-exif-garbage.jpg",
            jpeg_with_app1(jpeg, b"Exif\x00\x00" + random.Random(7).randbytes(60_000)),
        )
        yield "jpeg-exif-empty.jpg", jpeg_with_app1(jpeg, b"Exif\x00\x00")
        yield "jpeg-exif-big-endian-short.jpg", jpeg_with_app1(jpeg, b"Exif\x00\x00MM\x00*\x00\x00")
        huge_png = png(
            64,
            64,
            raw=(b"\0" + b"\x80" * 192) * 64,
            extra=[(b"eXIf", exif_block([(274, 3, 1, _short(6))], tail=b"\0" * 4_000_000))],
        )
        yield "png-exif-huge.png", huge_png
        yield (
            "png-exif-garbage.png",
            png(64, 64, raw=(b"\0" + b"\x80" * 192) * 64, extra=[(b"eXIf", b"\xff" * 64)]),
        )
        yield "tiff-orientation-tag-9.tif", tiff(64, 64, strip=b"\x80" * 4096, extra_tags=[(274, 3, 9)])

    def wrong_extensions(self) -> Iterator[tuple[str, bytes]]:
        """Images under another format's extension, and things that are no image under an image's."""
        for fmt, data in self.encoded_small.items():
            for other, ext in EXTENSIONS.items():
                if other != fmt:
                    yield f"{fmt.lower()}-named{ext}", data
        others = {
            "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
            "zip": _zip({"a.txt": b"hello"}),
            "elf": b"\x7fELF\x02\x01\x01" + b"\0" * 57,
            "text": b"just some words, no picture\n" * 10,
            "json": b'{"width": 100000, "height": 100000}',
            "html": b"<!doctype html><html><body><script>alert(1)</script></body></html>",
            "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999">'
            b"<script>alert(1)</script></svg>",
            "ico": encode(self.small, "ICO"),
            "pcx": encode(self.small, "PCX"),
            "tga": encode(self.small, "TGA"),
            "ppm": encode(self.small, "PPM"),
            "jpeg2000": encode(self.small, "JPEG2000"),
            "psd": b"8BPS\x00\x01" + b"\0" * 6 + struct.pack(">HIIHH", 3, HUGE, HUGE, 8, 3) + b"\0" * 64,
            "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\0" * 64,
            "avif": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\0" * 64,
            "utf16": "<svg></svg>".encode("utf-16"),
        }
        for label, data in others.items():
            for ext in (".jpg", ".png"):
                yield f"{label}-as{ext}", data

    def polyglots(self) -> Iterator[tuple[str, bytes]]:
        """Valid images with archives or scripts appended or embedded, and scripts posing as images."""
        jpeg, png_data, gif_data = (
            self.encoded_small["JPEG"],
            self.encoded_small["PNG"],
            self.encoded_small["GIF"],
        )
        script = b"<html><body><script>alert(document.cookie)</script></body></html>"
        yield "jpeg-zip.jpg", jpeg + _zip({"payload.txt": b"x" * 1000, "evil.sh": b"#!/bin/sh\nrm -rf /\n"})
        yield "png-html.png", png_data + script
        yield "png-js.png", png_data + b"\n;alert(1);//"
        yield "gif-js.gif", b"GIF89a/*" + gif_data[8:] + b"*/=alert(1);"
        yield "gif-html.gif", gif_data + script
        yield "bmp-html.bmp", self.encoded_small["BMP"] + script
        yield "webp-html.webp", self.encoded_small["WEBP"] + script
        yield "tiff-zip.tif", self.encoded_small["TIFF"] + _zip({"a": b"b"})
        yield (
            "jpeg-comment-html.jpg",
            jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(script) + 2) + script + jpeg[2:],
        )
        text_chunk = _png_chunk(b"tEXt", b"Comment\0" + script)
        yield "png-text-script.png", png_data[:33] + text_chunk + png_data[33:]
        yield "zip-with-jpeg.jpg", _zip({"photo.jpg": jpeg})
        yield "pdf-with-jpeg.jpg", b"%PDF-1.4\n" + jpeg + b"\n%%EOF\n"
        yield "html-named.jpg", script
        yield (
            "svg-named.jpg",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        )
        yield "svg-named.png", b'<svg onload="alert(1)" xmlns="http://www.w3.org/2000/svg"/>'
        yield "html-after-jpeg-magic.jpg", b"\xff\xd8\xff\xe0" + script
        yield "two-jpegs.jpg", jpeg + jpeg
        yield "png-two-iend.png", png_data + png_data

    def empty_and_zero(self) -> Iterator[tuple[str, bytes]]:
        """Empty files, lone magic numbers, one byte, and images of zero width or height."""
        magics = {
            ".jpg": b"\xff\xd8\xff",
            ".png": b"\x89PNG\r\n\x1a\n",
            ".webp": b"RIFF\0\0\0\0WEBP",
            ".gif": b"GIF89a",
            ".bmp": b"BM",
            ".tif": b"II*\x00",
            ".tiff": b"MM\x00*",
            ".jpeg": b"\xff\xd8",
        }
        for ext, magic in magics.items():
            yield f"empty{ext}", b""
            yield f"one-byte{ext}", b"\0"
            yield f"magic-only{ext}", magic
            yield f"newline{ext}", b"\n"
        for w, h in ((0, 0), (0, 64), (64, 0)):
            yield f"png-{w}x{h}.png", png(w, h, raw=b"\0" * 64)
            yield f"gif-{w}x{h}.gif", gif(w, h, frame_size=(w, h))
            yield f"bmp-{w}x{h}.bmp", bmp(w, h, pixels=b"")
            yield f"tiff-{w}x{h}.tif", tiff(w, h, strip=b"")
            jpeg = bytearray(self.encoded_small["JPEG"])
            sof = jpeg.index(b"\xff\xc0")
            jpeg[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
            yield f"jpeg-{w}x{h}.jpg", bytes(jpeg)
        yield "webp-riff-size-0.webp", b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0"

    def noise(self) -> Iterator[tuple[str, bytes]]:
        """Each format's first bytes followed by random bytes."""
        rng = random.Random(4_242)
        for fmt, data in self.encoded_small.items():
            for n in range(30):
                keep = rng.choice((2, 4, 8, 16, 32, 64))
                yield (
                    f"{fmt.lower()}-noise-{n:02d}{EXTENSIONS[fmt]}",
                    data[:keep] + rng.randbytes(rng.randint(0, 4096)),
                )


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def build_corpus(photo: np.ndarray, real_photos: Sequence[tuple[str, bytes]] = ()) -> list[HostileFile]:
    """Every hostile file, in a stable order, each name unique (prefixed by its family)."""
    corpus = Corpus(photo, real_photos)
    files = [
        HostileFile(f"{family}--{name}", data, family)
        for family, generate in corpus.families().items()
        for name, data in generate()
    ]
    names = [file.name for file in files]
    assert len(set(names)) == len(names), "corpus names must be unique"
    return files


def stratified(files: Sequence[HostileFile], per_family: int, seed: int = 16) -> list[HostileFile]:
    """Up to ``per_family`` files of each family, picked with a fixed seed."""
    rng = random.Random(seed)
    by_family: dict[str, list[HostileFile]] = {}
    for file in files:
        by_family.setdefault(file.family, []).append(file)
    return [
        file
        for members in by_family.values()
        for file in (members if len(members) <= per_family else rng.sample(members, per_family))
    ]


def write_corpus(files: Sequence[HostileFile], folder: Path) -> dict[str, HostileFile]:
    """Write the files into ``folder``; returns them by absolute path (as ingest records locations)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for file in files:
        path = folder / file.name
        path.write_bytes(file.data)
        written[str(path.resolve())] = file
    return written
