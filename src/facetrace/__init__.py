"""Facetrace: self-hosted face search with provenance, built so that every use can be accounted for."""

__version__ = "0.1.0"
