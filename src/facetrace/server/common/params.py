"""Bounds shared by the API's integer parameters.

The catalog keeps ids and sequence numbers in signed 64-bit columns: a larger number can name
nothing, and binding it to a query fails in the database driver. Routes refuse it as invalid
input (422) instead.
"""

from __future__ import annotations

#: The largest id or sequence number the catalog can hold.
MAX_ID = 2**63 - 1
