"""tokentrace for Prometheus and Grafana: the /metrics exposition, the PromQL that reads it,
the Grafana dashboard built from that PromQL, and alert rules exported as Prometheus rules."""
