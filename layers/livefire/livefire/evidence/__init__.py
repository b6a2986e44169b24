"""Evidence of a drill: the manifest of its artifacts (and the hash chain across drills) and its reports."""
