"""Labelled face folders and LFW-format pairs files.

A labelled folder holds one subfolder per identity and, optionally,
``_distractors/`` with images of people who are nobody's mate. A pairs file
follows LFW View 2: a header ``FOLDS PAIRS_PER_FOLD``, then per fold that many
matched lines ``name i j`` followed by as many mismatched lines ``name1 i name2 j``;
``i`` is the number in ``<name>_<i:04d>.jpg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetrace.ingest.inputs import IMAGE_SUFFIXES

DISTRACTORS = "_distractors"


@dataclass(frozen=True, slots=True)
class LabelledImage:
    path: Path
    identity: str | None  # None: a distractor


def scan_labelled_folder(root: Path) -> list[LabelledImage]:
    """Every image under ``root``: identity = its subfolder, or None under ``_distractors/``."""
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    images: list[LabelledImage] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        identity = None if folder.name == DISTRACTORS else folder.name
        images.extend(
            LabelledImage(path, identity)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
        )
    return images


@dataclass(frozen=True, slots=True)
class PairsProtocol:
    """Pairs of image paths with same/different truth and the fold each belongs to."""

    left: list[Path]
    right: list[Path]
    same: np.ndarray  # bool
    fold: np.ndarray  # int

    @property
    def paths(self) -> list[Path]:
        return sorted(set(self.left) | set(self.right))


def lfw_image_path(root: Path, name: str, number: int) -> Path:
    """``root/<name>/<name>_NNNN.jpg``, or the same file under ``_distractors/``."""
    file_name = f"{name}_{number:04d}.jpg"
    path = root / name / file_name
    return path if path.exists() else root / DISTRACTORS / file_name


def read_pairs(pairs_file: Path, root: Path) -> PairsProtocol:
    lines = [line.split() for line in pairs_file.read_text().splitlines() if line.strip()]
    folds, per_fold = (int(v) for v in lines[0][:2])
    body = lines[1:]
    if len(body) != folds * per_fold * 2:
        raise ValueError(f"{pairs_file}: header promises {folds}×{per_fold}×2 pairs, found {len(body)}")
    left, right, same, fold_of = [], [], [], []
    for row, fields in enumerate(body):
        if len(fields) == 3:
            name, i, j = fields
            left.append(lfw_image_path(root, name, int(i)))
            right.append(lfw_image_path(root, name, int(j)))
            same.append(True)
        elif len(fields) == 4:
            name1, i, name2, j = fields
            left.append(lfw_image_path(root, name1, int(i)))
            right.append(lfw_image_path(root, name2, int(j)))
            same.append(False)
        else:
            raise ValueError(f"{pairs_file}: line {row + 2} is neither 'name i j' nor 'name1 i name2 j'")
        fold_of.append(row // (per_fold * 2))
    return PairsProtocol(left, right, np.array(same), np.array(fold_of))


def make_pairs(root: Path, folds: int = 10, per_fold: int = 300, seed: int = 0) -> str:
    """An LFW-format pairs file for a labelled folder; identities are split across folds, as in LFW.

    ``per_fold`` is lowered to what the smallest fold can supply, so every fold has
    the same number of matched and mismatched pairs.
    """
    rng = np.random.default_rng(seed)
    by_identity: dict[str, list[int]] = {}
    for image in scan_labelled_folder(root):
        if image.identity is not None:
            number = int(image.path.stem.rsplit("_", 1)[-1])
            by_identity.setdefault(image.identity, []).append(number)
    names = sorted(name for name, numbers in by_identity.items() if len(numbers) >= 2)
    if len(names) < 2 * folds:
        raise ValueError(f"{root} has {len(names)} identities with 2+ images; {folds} folds need {2 * folds}")
    fold_names = np.array_split(rng.permutation(names), folds)
    matched_per_fold = [
        [(n, a, b) for n in group for k, a in enumerate(by_identity[n]) for b in by_identity[n][k + 1 :]]
        for group in fold_names
    ]
    per_fold = min(per_fold, *(len(m) for m in matched_per_fold))
    lines = [f"{folds}\t{per_fold}"]
    for group, matched in zip(fold_names, matched_per_fold, strict=True):
        for index in sorted(rng.choice(len(matched), size=per_fold, replace=False)):
            name, a, b = matched[index]
            lines.append(f"{name}\t{a}\t{b}")
        mismatched: set[tuple[str, int, str, int]] = set()
        while len(mismatched) < per_fold:
            first, second = sorted(rng.choice(group, size=2, replace=False))
            mismatched.add(
                (first, int(rng.choice(by_identity[first])), second, int(rng.choice(by_identity[second])))
            )
        lines.extend(f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in sorted(mismatched))
    return "\n".join(lines) + "\n"
