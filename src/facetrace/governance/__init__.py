"""Accountability: who may do what, searches with a purpose, and the hash-chained audit log.

The CLI, the API and the web app go through :class:`facetrace.governance.service.Governance`.
"""
