"""Domain-neutral observability helpers: Prometheus metric definitions, JSON logs with ids carried in
context variables, and optional OpenTelemetry tracing. Edges (API, workers, realtime pool) configure
them; the domain only records into them."""
