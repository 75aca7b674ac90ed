# venv: adk
# env: ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1
"""Google ADK as run_adk_litellm.py, in ADK's legacy telemetry schema (invocation / call_llm spans)."""

from run_adk_litellm import main

if __name__ == "__main__":
    main()
