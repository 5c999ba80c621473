"""The step loop: one thread owns the model and advances every running request by one token per forward pass.

`loop.Scheduler` admits, prefills (in chunks, reusing cached prefixes) and decodes; `row.Row` is one request's own
state; `forward` holds the runners that call the model; `kv_pool.KVPool` is every row's KV, allocated once;
`slots.SlotTable` says which row holds which slot and what idle slots still hold (the prefix cache); `choice`
chooses every row's token in one go.
"""
