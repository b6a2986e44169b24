"""Faults that something outside the mesh starts and ends: an AWS FIS experiment (fis.py), a webhook (webhook.py).

Each is an inject/restore pair with the same write-ahead discipline as a mesh fault (see chaos.py): the fault's
document (``faults/<fault-id>-<kind>.json``: what to start, what to call to end it, everything seen since) is in
S3 and the fault record PENDING before anything is started, so every rollback path (the planned one, the
emergency one, the guardian, the sweeper) can end it from the record alone.
"""
