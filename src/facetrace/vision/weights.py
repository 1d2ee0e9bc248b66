"""Find model files and prove they are the bytes we expect before loading them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from facetrace.core.errors import ModelIntegrityError

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
SFACE_FILE = "face_recognition_sface_2021dec.onnx"


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A model file on disk with its verified sha256."""

    path: Path
    sha256: str

    def model_id(self, name: str) -> str:
        """A stable id stored with every face: the model's name and the start of its checksum."""
        return f"{name}@{self.sha256[:12]}"


def packaged_weights_dir() -> Path:
    return Path(str(resources.files("facetrace") / "weights"))


def _expected_checksums(folder: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip()] = digest
    return sums


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_model(file_name: str) -> ModelFile:
    """A model shipped inside the package, refused unless it matches ``SHA256SUMS``."""
    folder = packaged_weights_dir()
    path = folder / file_name
    expected = _expected_checksums(folder).get(file_name)
    if expected is None:
        raise ModelIntegrityError(f"{file_name} has no checksum in {folder / 'SHA256SUMS'}")
    return _verified(path, expected)


def model_at(path: Path, expected_sha256: str | None = None) -> ModelFile:
    """A model plugged in by path; checked against ``expected_sha256`` when one is given."""
    return _verified(path, expected_sha256)


def _verified(path: Path, expected: str | None) -> ModelFile:
    if not path.is_file():
        raise ModelIntegrityError(f"model file not found: {path}")
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        raise ModelIntegrityError(
            f"model file {path} has sha256 {actual}, expected {expected}: refusing to load it"
        )
    return ModelFile(path=path, sha256=actual)
