"""Data checks: markers written in the primary region and read back in the others, so a drill measures
replication lag and the RPO (docs/architecture.md §6, §7). ``markers`` holds the sample model, ``stores`` the
``http`` and ``dynamodb`` marker stores, ``marking`` the fixed-rate writer and readers, ``cleanup`` the rollback
that deletes a drill's markers after every ending."""
