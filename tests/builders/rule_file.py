"""An alert-rule file with a rule of every kind and a notifier, as the TOML a user writes."""

EVERY_KIND = """
[[notifiers]]
name = "oncall"
type = "slack"
url = "https://hooks.example.com/T0/B0"

[[rules]]
name = "p95"
kind = "threshold"
metric = "p95_latency_ms"
above = 10000
window = "15m"
group_by = ["model"]
where = { tenant = "acme" }
for = "2m"
notify = ["oncall", "log"]

[[rules]]
name = "tokens per request out of range"
kind = "threshold"
metric = "tokens_per_request"
above = 8000
below = 50

[[rules]]
name = "budget"
kind = "slo_burn"

[[rules]]
name = "drift"
kind = "prompt_drift"
group_by = ["feature"]

[[rules]]
name = "storm"
kind = "retry_storm"

[[rules]]
name = "spike"
kind = "anomaly"
metric = "cost_per_hour"
"""
