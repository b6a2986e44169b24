"""Faults: one lifecycle (lifecycle.py) that keeps every fault safe, and one driver per kind behind a small
protocol (driver.py): mesh objects (mesh.py), AWS FIS experiments (fis.py), webhooks (webhook.py).
See docs/architecture.md §5.
"""
