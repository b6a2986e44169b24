"""Probing: fixed-schedule HTTP probes with adaptive bursts, streamed to S3 as sample chunks.

Modules: ``http`` (one probe), ``engine`` (the schedule), ``chunks`` (S3 sample chunks), ``window`` (what the
probe Lambda calls). Nothing is re-exported here so that readers of samples do not import the engine.
"""
