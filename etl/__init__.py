"""Getting data into the graph and training snapshots out of it.

sources/     adapters: canonical CSV/JSON Lines/Parquet (+ YAML column mappings), DonorsChoose,
             IRS EO BMF; each yields raw rows per canonical entity with file and line
entities     the canonical entities, their columns and checks
parse, validate, fastpath   per-row checks (typed Parquet columns pre-checked at once)
pipeline     validated, resumable, traced loads (manifest, checkpoint, rejects)
writer       batched UNWIND ... MERGE with lineage (`load_id`)
loader       trusted tables (synthetic data, tests) straight into the graph
snapshot     content-hashed training snapshots; export: full-graph exports
anonymize    the anonymized analyst graph
synth        seeded synthetic graphs, one config: small in memory, or streamed at scale
"""
