"""Vector indexes: the :class:`~facetrace.index.base.VectorIndex` interface (``base``), the
structures a gallery can use (``kinds``), and the FAISS implementation (``faiss_index``).

Nothing is imported here, so that naming an index kind (the CLI does) does not load FAISS.
"""
