"""livefire: live-fire disaster-recovery drills for Istio service meshes, with audit-grade evidence."""

__version__ = "0.1.0"
