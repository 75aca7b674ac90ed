"""A deterministic simulated LLM provider (OpenAI- and Anthropic-compatible) for demos and tests.

The only stand-in in tokentrace: everything else is driven for real, through the real
`openai` and `anthropic` SDKs pointed at this provider.
"""
