"""The searchable gallery: catalog and index kept in step (``gallery``), searches with provenance
(``search``), near-duplicate folding, the score calibration curve and the gallery's statistics."""
