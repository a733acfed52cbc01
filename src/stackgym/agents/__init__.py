"""Agents that work on every environment (LLMs, replay), registered by prefix.

* ``openai:MODEL`` — any OpenAI-compatible endpoint (``OPENAI_BASE_URL``,
  ``OPENAI_API_KEY``): OpenAI, vLLM, Ollama, llama.cpp…
* ``openrouter:MODEL`` — OpenRouter (``OPENROUTER_API_KEY``).
* ``replay:PATH`` — replays the actions of recorded traces.
* ``scorer:BASE`` — re-ranks BASE's candidate actions with a trained Tier 1 scorer.

Baselines (``oracle``, ``heuristic``, ``random``) are registered by each env.
Registration uses import-path strings, so importing this package stays light.
"""

from stackgym.core.agents import register_agent_family

register_agent_family(
    "openai",
    "stackgym.agents.llm:openai_agent",
    "LLM over an OpenAI-compatible API (OPENAI_BASE_URL, OPENAI_API_KEY)",
)
register_agent_family(
    "openrouter",
    "stackgym.agents.llm:openrouter_agent",
    "LLM over OpenRouter (OPENROUTER_API_KEY)",
)
register_agent_family(
    "replay",
    "stackgym.agents.replay:replay_agent",
    "replays the actions of recorded traces (a trace folder or traces.jsonl)",
)
register_agent_family(
    "scorer",
    "stackgym.train.agent:scorer_agent",
    "re-ranks a base agent's candidate actions with a trained Tier 1 scorer (scorer:heuristic)",
)
