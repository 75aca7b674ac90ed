"""Attribute names tokentrace reads and emits (gen_ai.* and tokentrace.*).

Where a concept has had several spellings across semantic-convention releases, the
tuple lists them newest first; the first one present on a span wins.
"""

from __future__ import annotations

# --- OpenTelemetry GenAI conventions -------------------------------------------------
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens")
CACHE_READ_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
)
REASONING_TOKENS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.usage.output_tokens.reasoning",
)
# Tokens by modality (the merged GenAI conventions; LiveKit's older spelling second)
INPUT_AUDIO_TOKENS = ("gen_ai.usage.audio.input_tokens", "gen_ai.usage.input_audio_tokens")
OUTPUT_AUDIO_TOKENS = ("gen_ai.usage.audio.output_tokens", "gen_ai.usage.output_audio_tokens")
CACHE_AUDIO_READ_TOKENS = ("gen_ai.usage.audio.cache_read.input_tokens",)
INPUT_IMAGE_TOKENS = ("gen_ai.usage.image.input_tokens",)
OUTPUT_IMAGE_TOKENS = ("gen_ai.usage.image.output_tokens",)
CACHE_IMAGE_READ_TOKENS = ("gen_ai.usage.image.cache_read.input_tokens",)
FINISH_REASONS = "gen_ai.response.finish_reasons"
TEMPERATURE = "gen_ai.request.temperature"
MAX_TOKENS = "gen_ai.request.max_tokens"
TOP_P = "gen_ai.request.top_p"
SEED = "gen_ai.request.seed"
STREAM = ("gen_ai.request.stream", "gen_ai.is_streaming")
TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
CONVERSATION_ID = "gen_ai.conversation.id"
TOOL_NAME = "gen_ai.tool.name"
AGENT_NAME = "gen_ai.agent.name"
DATA_SOURCE = "gen_ai.data_source.id"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
HTTP_STATUS = ("http.response.status_code", "http.status_code")

# --- Resource -----------------------------------------------------------------------
SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
ENVIRONMENT = ("deployment.environment.name", "deployment.environment")

# --- Attribution tags (span, then resource, then baggage-stamped) ------------------------
USER_ID = ("user.id", "tokentrace.user_id", "user_id", "enduser.id")
SESSION_ID = ("session.id", "tokentrace.session_id", "session_id")
TENANT_ID = ("tenant.id", "tokentrace.tenant_id", "tenant_id")
FEATURE = ("tokentrace.feature", "feature")
PROMPT_TEMPLATE = ("tokentrace.prompt.template", "prompt_template", "prompt.template")
PROMPT_VERSION = ("tokentrace.prompt.version", "prompt_version", "prompt.version")

#: Attribution tags → the attribute the SDK and the gateway write (the first spelling above).
TAG_ATTRIBUTES = {
    "tenant_id": "tenant.id",
    "user_id": "user.id",
    "session_id": "session.id",
    "feature": "tokentrace.feature",
    "prompt_template": "tokentrace.prompt.template",
    "prompt_version": "tokentrace.prompt.version",
}

# --- tokentrace's own -----------------------------------------------------------------
REQUEST_ID = ("tokentrace.request_id", "gen_ai.request.id", "http.request.header.x-request-id")
RETRY_ATTEMPT = ("tokentrace.retry_attempt", "http.request.resend_count")
TTFT_MS = "tokentrace.ttft_ms"
PRICE_MODEL = "tokentrace.price.model"
PRICE_PROVIDER = "tokentrace.price.provider"
PRICE_SOURCE = "tokentrace.price.source"
PRICE_CONDITIONS = (
    "tokentrace.price.conditions"  # the price variant used: service_tier=flex, processing=batch
)
# A self-hosted deployment's share of its hour: pending, estimated (hour open) or final.
PRICE_AMORTIZED = "tokentrace.price.amortized"
PRICE_PROVENANCE = (PRICE_MODEL, PRICE_PROVIDER, PRICE_SOURCE, PRICE_CONDITIONS, PRICE_AMORTIZED)
# The tier a call was served (and billed) at, best first: the answered tier, then the requested.
SERVICE_TIER = (
    "tokentrace.service_tier",
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
    "anthropic.response.service_tier",
    "anthropic.usage.service_tier",
    "openai.request.service_tier",
    "gen_ai.openai.request.service_tier",
)
OUTPUT_TYPE = "gen_ai.output.type"  # text, json, image, speech: what the request asked for
REFUSAL = "tokentrace.refusal"  # the provider's refusal field was set
JSON_VALID = "tokentrace.output.json_valid"  # checked by the SDK when JSON output was asked
# Set by a normalizer on a span that only reports the usage of its request sibling (Logfire's
# stream log-span); the store pairs the two as one call (store/duplicates.py).
USAGE_REPORT = "tokentrace.usage_report"

# Usage an aggregate span (an agent run, a workflow) reported for its children: shown, never summed.
SUBTOTAL = "tokentrace.subtotal."
# On a span of LLM kind that never reached a model (a preparation step): the operation it claimed.
NOT_A_CALL = "tokentrace.not_a_call"
# A router's model name as sent (`openai/gpt-4o-mini`), when the provider was split off it.
ROUTED_MODEL = "tokentrace.model.routed"

# --- Evaluation results (scores) -------------------------------------------------------
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE = "gen_ai.evaluation.score.value"
EVALUATION_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
SCORE_ID = "tokentrace.score.id"
SCORE_DATA_TYPE = "tokentrace.score.data_type"
SCORE_SOURCE = "tokentrace.score.source"
SCORE_SESSION_ID = "tokentrace.score.session_id"  # a score of the whole session (no trace needed)
