"""The mesh's own telemetry held against the probes: the Prometheus API client (``client``), the drill's PromQL
(``queries``), the counters cut into phases (``series``) and the agreement findings (``agreement``)
(docs/architecture.md §7)."""
