"""The step loop: one thread owns the model and advances every running request by one token per forward pass.

`loop.Scheduler` admits, prefills (in chunks, reusing cached prefixes) and decodes; `row.Row` is one request's own
state; `batch.DecodeBatch` holds the running rows' KV cache; `prefix_cache.PrefixCache` keeps KV across requests.
"""
