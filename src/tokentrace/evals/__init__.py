"""Evaluators: what grades an LLM call's answer (an LLM judge, a regex, a JSON schema), as
configured in a TOML file, and the verdicts they give. The server's job that runs them over
the calls as they arrive is jobs/evaluate.py (issue 30)."""
