"""The governance service, one module per concern; :class:`facetrace.governance.service.Governance`
combines them."""
