"""Streams of prior batches: deterministic per (run seed, rank, batch index), whoever produces them.

- ``spec``: the stream config, batch shapes per step, seeds per (rank, step), one batch as Arrow bytes;
- ``pool``: a pool of worker processes that produce batches and survive worker deaths;
- ``sources``: ordered, resumable iterators over a pool (``LocalSource``), Flight servers
  (``pfnforge.stream.flight.FlightSource``) or shards on disk (``pfnforge.stream.shards.ShardSource``);
- ``provenance``: a stream's fingerprint (prior, config hash, schema, seed, ranks) and the checks a run makes.
"""
