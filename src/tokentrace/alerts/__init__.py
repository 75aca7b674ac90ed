"""Alerts: rules (thresholds, baselines, anomalies, burn, drift, retry storms, loops), their
conditions computed through query/, the evaluator job, and the webhook notifier."""
