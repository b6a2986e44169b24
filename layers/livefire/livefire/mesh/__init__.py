"""The mesh: Kubernetes API access, faults as apply/restore pairs, and posture checks."""
