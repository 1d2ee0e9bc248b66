"""Vector indexes: the :class:`~facetrace.index.base.VectorIndex` interface (``base``), the
structures a gallery can use (``kinds``), FAISS (``faiss_index``: exact; ``ivf_pq_index``:
compressed), Milvus (``milvus_index``), and the choice between them (``stores``).

Nothing is imported here, so that naming an index kind (the CLI does) does not load FAISS.
"""
