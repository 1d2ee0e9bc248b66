"""Face detection against ground-truth boxes: recall and false detections.

Ground truth comes in dlib's imglab XML format (``<image file=...><box top= left=
width= height=/>``), the format of dlib's annotated PASCAL VOC face set. Detectors
draw boxes differently (dlib's are tight and square, YuNet's include the forehead),
so a detection matches a ground-truth face at a lenient overlap, one to one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

Box = tuple[float, float, float, float]  # x, y, width, height

MIN_IOU = 0.3


def read_imglab_boxes(xml_files: Iterable[Path]) -> dict[Path, list[Box]]:
    """Ground-truth boxes per image file (resolved next to its XML file)."""
    truth: dict[Path, list[Box]] = {}
    for xml_file in xml_files:
        for image in ET.parse(xml_file).getroot().iter("image"):
            boxes = [
                (
                    float(b.get("left", 0)),
                    float(b.get("top", 0)),
                    float(b.get("width", 0)),
                    float(b.get("height", 0)),
                )
                for b in image.findall("box")
                if b.get("ignore") != "1"
            ]
            truth[xml_file.parent / image.get("file", "")] = boxes
    return truth


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def matched_faces(found: Sequence[Box], truth: Sequence[Box], min_iou: float = MIN_IOU) -> int:
    """How many ground-truth faces a detection covers; greedy, best overlap first, one to one."""
    pairs = sorted(
        ((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)),
        reverse=True,
    )
    used_found: set[int] = set()
    used_truth: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if i not in used_found and j not in used_truth:
            used_found.add(i)
            used_truth.add(j)
    return len(used_truth)


@dataclass(slots=True)
class DetectionScore:
    """Totals over a set of images: ground-truth faces, detections, and how many matched."""

    truth: int = 0
    found: int = 0
    matched: int = 0

    def add(self, found: Sequence[Box], truth: Sequence[Box]) -> None:
        self.truth += len(truth)
        self.found += len(found)
        self.matched += matched_faces(found, truth)

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 1.0

    @property
    def false_detections(self) -> int:
        return self.found - self.matched
