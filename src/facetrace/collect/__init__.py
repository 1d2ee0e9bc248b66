"""Collection: the registry of sources Facetrace may collect from (the crawler comes next)."""
