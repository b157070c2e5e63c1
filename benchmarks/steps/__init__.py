"""One module a benchmark step: what it measures and the report it writes."""
