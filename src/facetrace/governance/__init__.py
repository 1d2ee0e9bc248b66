"""Accountability: who may do what, searches with a purpose, and the hash-chained audit log.

The CLI (and later the API and web app) go through :class:`facetrace.governance.service.Governance`.
"""
