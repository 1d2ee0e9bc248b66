"""The most collection jobs one listing returns, apart from :mod:`facetrace.governance.collection_jobs`
so that a command-line option can declare it as its bound without loading the catalog's models."""

#: The most jobs one listing returns; older ones are reached with ``before``.
MAX_LISTED = 500
