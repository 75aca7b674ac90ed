"""The default redaction rules: emails, API keys and card numbers, replaced by placeholders.

The SDK applies `redact_defaults(text)` to captured content unless told otherwise (pass
`redact=` your own function, which may call this one, or `redact=None` to send as is); the
server applies it again to everything it is sent, before the spool (ingest/redact.py).
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
API_KEY = re.compile(
    r"\b(?:"
    r"sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google
    r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r")"
)
BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/-]{20,}=*")
# 13 to 19 digits, optionally grouped by spaces or dashes; kept only if the Luhn check passes.
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", re.ASCII)  # the Luhn check reads 0-9


# A pattern both Python's re and RE2 (Arrow's compute) accept that matches wherever one of the
# rules above might: ingest finds the values worth redacting with it, column by column, and
# redacts those with the rules. It is a superset of the rules kept cheap for RE2: each rule's
# fixed part (an email's domain after its `@`, a key's prefix, "bearer", thirteen digits), not the
# whole rule. The rules themselves together scanned at ~160 MB/s, this at ~380 (session 30).
CANDIDATE = "|".join(
    [
        r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        # (no \b: JSON text escapes a newline before a key as \n, which is no boundary to RE2)
        r"(?:sk-|AKIA|gh[pousr]_|xox[abposr]-|AIza|[spr]k_(?:live|test)_)",
        r"(?i:bearer)",
        r"\d(?:[ -]?\d){12}",
    ]
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group())
    return "[CARD]" if _luhn(digits) else match.group()


def redact_defaults(text: str) -> str:
    """Replace email addresses, API keys and card numbers with [EMAIL], [API_KEY], [CARD]."""
    if "@" in text:
        text = EMAIL.sub("[EMAIL]", text)
    text = API_KEY.sub("[API_KEY]", text)
    text = BEARER.sub(r"\1[API_KEY]", text)
    return CARD.sub(_card, text)
