"""The gateway: an OpenAI- and Anthropic-compatible proxy that records every call as OTLP spans
and holds tenants to budgets. It speaks OTLP to the server and never imports ingest, store,
query or server."""
