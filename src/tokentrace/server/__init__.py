"""The server: OTLP receivers (HTTP and gRPC), the REST API, the UI and /metrics over one store."""
