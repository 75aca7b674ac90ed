# venv: adk
"""Google ADK: LlmAgent on LiteLlm (openai/gpt-4o-mini), ADK's own OpenTelemetry spans on a global
TracerProvider (ADK traces through the global provider once one is set). ADK exports the session id
(gen_ai.conversation.id) but neither user nor tenant, so each run is wrapped in harness.tagged_root."""

import asyncio

import harness
from google.adk.agents import LlmAgent, RunConfig
from google.adk.agents.run_config import StreamingMode
from google.adk.models.lite_llm import LiteLlm
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import types


async def run(model, run_config: RunConfig | None = None) -> None:
    agent = LlmAgent(
        name=harness.AGENT, model=model, instruction=harness.INSTRUCTIONS, tools=[harness.get_weather]
    )
    sessions = InMemorySessionService()
    await sessions.create_session(app_name="weather_app", user_id=harness.USER, session_id=harness.SESSION)
    runner = Runner(agent=agent, app_name="weather_app", session_service=sessions)
    message = types.Content(role="user", parts=[types.Part(text=harness.QUESTION)])
    with harness.tagged_root("weather_run"):
        async for _event in runner.run_async(
            user_id=harness.USER, session_id=harness.SESSION, new_message=message, run_config=run_config
        ):
            pass


def main() -> None:
    harness.otel_sdk("weather-app")

    def model() -> LiteLlm:
        return LiteLlm(model=f"openai/{harness.OPENAI_MODEL}", api_base=harness.OPENAI_BASE)

    with harness.scenario("plain"):
        asyncio.run(run(model()))
    with harness.scenario("stream", streamed=True):
        asyncio.run(run(model(), RunConfig(streaming_mode=StreamingMode.SSE)))
    harness.finish()


if __name__ == "__main__":
    main()
