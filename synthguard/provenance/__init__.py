"""Keys and certificates, manifest building, C2PA sign / read / sidecars, and the ledger.

Knows nothing of watermark internals: a watermark reaches a manifest only as a ``SoftBinding`` (algorithm id and
payload bytes).
"""
