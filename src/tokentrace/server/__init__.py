"""The server: OTLP receivers, REST API (and later UI, /metrics) over one store."""
