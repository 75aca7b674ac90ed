# venv: strands
# env: OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental
"""Strands Agents as run_strands.py, with the newer GenAI conventions (gen_ai_latest_experimental)."""

from run_strands import main

if __name__ == "__main__":
    main()
