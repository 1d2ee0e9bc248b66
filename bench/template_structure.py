"""How the dev templates are spread: why a compressed index must scan most of its lists.

Prints, for the real SFace templates of the dev photos (cached by ``facetrace bench search``
under ``var/bench``, else embedded here):

* the effective dimension of their covariance, (sum of eigenvalues)^2 / sum of their squares
  (128 if spread evenly over every direction, 1 if along one);
* the impostor similarity profile of the real templates and of synthetic ones drawn from the
  fitted Gaussian (``facetrace.evaluation.synthetic``);
* recall@10 of an IVF index with 16 lists, scanning 1, 2, 4 and 8 of them, on the real templates
  of people with a single photo and on as many synthetic ones: if the real ones had structure
  the Gaussian lacks (clusters), IVF would recall more on them.

Run: ``.venv/bin/python bench/template_structure.py``
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import faiss
import numpy as np

from facetrace.core.config import Settings
from facetrace.evaluation.scale import exact_top, real_templates
from facetrace.evaluation.synthetic import TemplateModel, similarity_profile

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "dev"
NLIST, SCANNED, QUERIES = 16, (1, 2, 4, 8), 300


def ivf_recall(data: np.ndarray) -> list[float]:
    """Recall@10 of IVF (NLIST lists) for QUERIES held-out rows of ``data``, per lists scanned."""
    held_out = np.random.default_rng(0).choice(len(data), QUERIES, replace=False)
    rest = np.ones(len(data), dtype=bool)
    rest[held_out] = False
    gallery, queries = np.ascontiguousarray(data[rest]), np.ascontiguousarray(data[held_out])
    truth = exact_top(gallery, queries)
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(data.shape[1]), data.shape[1], NLIST, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = 1
    index.train(gallery)
    index.add(gallery)
    recalls = []
    for scanned in SCANNED:
        index.nprobe = scanned
        found = index.search(queries, 10)[1]
        hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
        recalls.append(round(hits / truth.size, 3))
    return recalls


def main() -> None:
    settings = Settings()
    real = real_templates(settings, DEV, settings.data_dir / "bench")
    templates = np.vstack([real.gallery, real.probes]).astype(np.float32)
    labels = np.concatenate([real.gallery_labels, real.probe_labels])
    eigenvalues = np.linalg.eigvalsh(np.cov(real.gallery, rowvar=False))
    print(
        f"templates: {len(templates)}, effective dimension of the gallery's covariance: "
        f"{eigenvalues.sum() ** 2 / (eigenvalues**2).sum():.0f} of {templates.shape[1]}"
    )
    model = TemplateModel.fit(real.gallery)
    synthetic = model.sample(20_000, seed=5)
    print("impostor similarities, real:", similarity_profile(real.gallery, real.gallery, real.gallery_labels))
    print("impostor similarities, synthetic:", similarity_profile(synthetic, synthetic))
    photos = Counter(labels)
    singles = templates[np.array([photos[label] == 1 for label in labels])]
    print(f"IVF recall@10, {NLIST} lists, scanning {SCANNED}:")
    print(f"  {len(singles)} real single-photo people:", ivf_recall(singles))
    print(
        "  as many synthetic templates:", ivf_recall(TemplateModel.fit(singles).sample(len(singles), seed=4))
    )


if __name__ == "__main__":
    main()
