"""The tokentrace SDK: one line to instrument openai and anthropic, tags that follow every span.

It speaks OTLP only and never imports the server. Install with `pip install tokentrace[sdk]`.
"""

from tokentrace.redaction import redact_defaults
from tokentrace.sdk import budget
from tokentrace.sdk.observe import observe
from tokentrace.sdk.scores import score
from tokentrace.sdk.tags import context
from tokentrace.sdk.tracing import flush, init, shutdown

__all__ = ["budget", "context", "flush", "init", "observe", "redact_defaults", "score", "shutdown"]
