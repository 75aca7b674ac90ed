"""Incidents planted by `tokentrace demo`, modelled on real post-mortems."""

from __future__ import annotations

from dataclasses import dataclass

from tokentrace.simulate.world import Conditions


@dataclass(frozen=True)
class Incident:
    """A planted incident: how the app behaves, its story, and where to look (commands, or API
    paths the demo prefixes with the server's URL)."""

    conditions: Conditions
    story: str
    where_to_look: tuple[str, ...]


INCIDENTS = {
    "retry-storm": Incident(
        Conditions(
            name="retry-storm",
            retry_storm_feature="refund-chat",
            rate_limit_rate=0.6,
            version_override={"refund-chat": ("v4", 900)},
        ),
        "refund-chat shipped prompt v4 (twice the system prompt) and, hitting 429s, its own retry "
        "loop resends the growing conversation at once: tokens and errors climb with flat traffic.",
        (
            "tokentrace cost --by feature,prompt_version --since 15m",
            "tokentrace cost --by feature,error_type --since 15m",
            "tokentrace traces --since 15m --status error",
        ),
    ),
    "expensive-model": Incident(
        Conditions(
            name="expensive-model", model_override={"search-summarize": "gpt-4o", "classify-ticket": "gpt-4o"}
        ),
        "a config change moved search-summarize and classify-ticket from gpt-4o-mini to gpt-4o.",
        ("tokentrace cost --by feature,model --since 15m",),
    ),
    "tenant-loop": Incident(
        Conditions(name="tenant-loop", looping_tenant="initech"),
        "one of initech's scripts loops, sending the same prompt again and again.",
        ("tokentrace cost --by tenant_id,user_id --since 15m",),
    ),
    "runaway-agent": Incident(
        Conditions(name="runaway-agent", runaway_user="user-07"),
        "user-07's refund agent waits for a delivery that never comes: each turn re-reads the order's "
        "whole history and asks again, so one session resends a growing conversation, 20 calls a request.",
        ("tokentrace sessions --since 15m", "tokentrace cost --by user_id,session_id --since 15m"),
    ),
    "slow-provider": Incident(
        Conditions(name="slow-provider", slow_provider="anthropic"),
        "Anthropic degrades: claude-sonnet-4-6's first token takes 2.5 s; nothing fails, email-draft "
        "just answers slowly and p95 climbs with a flat error graph.",
        (
            "/api/v1/latency?group_by=provider,request_model&since=15m",
            "tokentrace traces --since 15m --model claude-sonnet-4-6",
        ),
    ),
    "cache-miss": Incident(
        Conditions(name="cache-miss", cache_busting=True),
        "a timestamp added at the top of email-draft's system prompt invalidates its cached prefix.",
        ("tokentrace cost --by feature,model --since 15m",),
    ),
    "provider-overload": Incident(
        Conditions(name="provider-overload", overloaded_provider="anthropic"),
        "Anthropic is overloaded: 7 in 10 of email-draft's calls get a 529, the SDK retries each "
        "twice, then the app falls back to OpenAI's gpt-4o, with no cached prefix there: errors "
        "climb on one provider while the drafts still go out, at another model's price.",
        (
            "tokentrace cost --by feature,provider,model,error_type --since 15m",
            "tokentrace traces --since 15m --status error",
        ),
    ),
    "context-overflow": Incident(
        Conditions(name="context-overflow", stuffed_context_feature="search-summarize"),
        "a reindex of the policy knowledge base made its search return whole documents, not "
        "passages: search-summarize's prompts grow from ~450 tokens to 20k-160k. Past gpt-4o-mini's "
        "128k window the calls fail (context_length_exceeded); below it they cost over a hundred times "
        "more.",
        (
            "tokentrace cost --by feature,error_type --since 15m",
            "/api/v1/latency?group_by=feature,input_bucket&since=15m",
        ),
    ),
    "reasoning-effort": Incident(
        Conditions(name="reasoning-effort", high_effort_feature="classify-ticket"),
        "to fix misrouted tickets, classify-ticket moved from gpt-4o-mini to o4-mini with "
        "reasoning_effort=high: its labels are still a few words, but each call now thinks for "
        "1.5k-6k hidden reasoning tokens, billed as output at o4-mini's rate.",
        (
            "tokentrace cost --by feature,model --since 15m",
            "tokentrace triage --since 15m --baseline 1h",
        ),
    ),
    "lost-context": Incident(
        Conditions(
            name="lost-context",
            version_override={"refund-chat": ("v4", 450)},
            lost_context_feature="refund-chat",
        ),
        "refund-chat shipped prompt v4, whose template no longer passes the retrieved policy to the "
        "model: nothing fails and nothing costs more, but its answers stop citing the policy. Only "
        "the groundedness evaluator sees it (demo --serve runs it; the judge is the simulated model).",
        (
            "/quality?since=15m&feature=refund-chat",
            "/api/v1/triage?since=10m&baseline=1h",
        ),
    ),
}
