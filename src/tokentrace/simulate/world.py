"""The simulated SaaS: tenants, users, features, prompt templates, and the requests they make."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

TENANTS = (("acme", 0.35), ("globex", 0.25), ("initech", 0.20), ("umbrella", 0.12), ("hooli", 0.08))
USERS = tuple(f"user-{i:02d}" for i in range(50))
REASONING_MODEL = "o4-mini"  # where a feature moved "for accuracy" goes (an incident)
_POLICY = (
    "Refunds are issued to the original payment method within five business days of the "
    "returned item reaching our warehouse. Items must be unused and in original packaging. "
)


@dataclass(frozen=True)
class Feature:
    name: str
    provider: str  # openai | anthropic
    model: str
    template: str
    version: str
    system_words: int  # size of the template's system prompt
    weight: float


FEATURES = (
    Feature("refund-chat", "openai", "gpt-4o", "refund", "v3", 450, 0.35),
    Feature("search-summarize", "openai", "gpt-4o-mini", "summarize", "v2", 250, 0.30),
    Feature("email-draft", "anthropic", "claude-sonnet-4-6", "draft", "v5", 1400, 0.20),
    Feature("classify-ticket", "openai", "gpt-4o-mini", "summarize", "v2", 80, 0.15),
)
QUESTIONS = (
    "Where is my refund for order {n}?",
    "Can I return the shoes I bought last week (order {n})?",
    "My package {n} arrived damaged, what now?",
    "Summarize the tickets about order {n}.",
    "Draft a reply to the customer about invoice {n}.",
)


@dataclass(frozen=True)
class Conditions:
    """How the app behaves at a moment: normal, or during a planted incident."""

    name: str = "normal"
    version_override: dict[str, tuple[str, int]] = field(default_factory=dict)  # feature → (version, words)
    model_override: dict[str, str] = field(default_factory=dict)  # feature → model
    retry_storm_feature: str | None = None  # app-level retries that resend a growing conversation
    rate_limit_rate: float = 0.0  # share of provider calls answered 429 (for the storm's feature)
    looping_tenant: str | None = None  # one tenant's script sends the same prompt again and again
    cache_busting: bool = False  # a per-request timestamp at the start of the system prompt
    runaway_user: str | None = None  # this user's refund agent loops in one session, its context growing
    runaway_turns: int = 20  # the looping agent's LLM calls per request
    slow_provider: str | None = None  # this provider's first token comes late: slow, no errors
    slow_ttft_ms: int = 2500
    # this feature's prompt no longer carries the documents it retrieved: its answers stop citing
    # them (nothing fails, nothing costs more; a groundedness evaluator sees it)
    lost_context_feature: str | None = None
    # this feature's retriever returns whole documents instead of passages (a reindex): its
    # prompts grow to 20k-160k tokens, past the model's 128k window on about a quarter of them
    stuffed_context_feature: str | None = None
    # this provider is overloaded: it answers 529 to this share of requests, and the app's
    # fallback sends those to another provider's model
    overloaded_provider: str | None = None
    overloaded_rate: float = 0.7
    # this feature moved to a reasoning model at high effort: the same short answers, with
    # thousands of hidden reasoning tokens billed as output on each
    high_effort_feature: str | None = None

    def overloaded(self, provider: str, request: Request) -> bool:
        """Whether the provider refuses this request (the same one in every run)."""
        return (
            self.overloaded_provider == provider
            and random.Random(request.at_ns).random() < self.overloaded_rate
        )

    def feature(self, base: Feature) -> Feature:
        changed = base
        if base.name in self.version_override:
            version, words = self.version_override[base.name]
            changed = replace(changed, version=version, system_words=words)
        if base.name in self.model_override:
            changed = replace(changed, model=self.model_override[base.name])
        if base.name == self.high_effort_feature:
            changed = replace(changed, model=REASONING_MODEL)
        return changed


@dataclass(frozen=True)
class Request:
    at_ns: int  # virtual arrival time
    tenant: str
    user: str
    session: str
    feature: Feature
    question: str


def system_prompt(feature: Feature) -> str:
    words = (_POLICY * (feature.system_words // len(_POLICY.split()) + 1)).split()[: feature.system_words]
    return f"You are the {feature.name} assistant ({feature.template} {feature.version}). " + " ".join(words)


def system_prompt_with(feature: Feature, documents: str, conditions: Conditions) -> str:
    """The feature's system prompt with the documents it retrieved in a <context> block (the
    simulated model answers from it), unless the feature's prompt lost them (an incident)."""
    if conditions.lost_context_feature == feature.name:
        return system_prompt(feature)
    return f"{system_prompt(feature)} <context>{documents}</context>"


def whole_documents(question: str) -> str:
    """What a retriever that returns whole documents instead of passages hands the prompt for a
    question: 20k to 160k tokens of policy text (4 characters a token), the same in every run."""
    tokens = random.Random(question).randrange(20_000, 160_000)
    return (_POLICY * (tokens * 4 // len(_POLICY) + 1))[: tokens * 4]


def tenant_of(user: str) -> str:
    """The tenant a simulated user belongs to (the same for a user in every run)."""
    rng = random.Random(user)
    return rng.choices([t for t, _ in TENANTS], [w for _, w in TENANTS])[0]


def requests(seed: int, start_ns: int, end_ns: int, count: int, conditions: Conditions) -> list[Request]:
    """`count` users' requests spread over [start, end), deterministic for a seed; a looping
    script's requests come on top of them (it adds traffic, it does not replace users)."""
    rng = random.Random(seed)
    out = []
    loops = 2 * count if conditions.looping_tenant else 0
    runaway = max(count // 4, 3) if conditions.runaway_user else 0
    for n in range(count + loops + runaway):
        at = rng.randrange(start_ns, end_ns)
        if n >= count + loops:  # one user asking again and again in the session that loops
            user = conditions.runaway_user or ""
            tenant, question, feature = tenant_of(user), QUESTIONS[0].format(n=4242), FEATURES[0]
            out.append(Request(at, tenant, user, f"{user}-s9", conditions.feature(feature), question))
            continue
        if n >= count:
            tenant, user, question = conditions.looping_tenant, "script-bot", QUESTIONS[0].format(n=1001)
            feature = FEATURES[0]  # their integration polls the refund agent
        else:
            user = rng.choice(USERS)
            tenant = tenant_of(user)
            feature = rng.choices(FEATURES, [f.weight for f in FEATURES])[0]
            question = rng.choice(QUESTIONS).format(n=rng.randint(1000, 9999))
        session = f"{user}-s{rng.randint(1, 6)}"
        out.append(Request(at, tenant, user, session, conditions.feature(feature), question))
    return sorted(out, key=lambda r: r.at_ns)
