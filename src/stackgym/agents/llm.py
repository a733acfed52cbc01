"""An LLM agent over any OpenAI-compatible chat completions API.

``openai:MODEL`` talks to ``$OPENAI_BASE_URL`` (default OpenAI) with
``$OPENAI_API_KEY``; ``openrouter:MODEL`` talks to OpenRouter with
``$OPENROUTER_API_KEY``. vLLM, Ollama, llama.cpp and friends are
``openai:MODEL`` with ``OPENAI_BASE_URL`` pointing at them.

How a turn works: the env's tools go to the model as native function-calling
tools (or, with ``protocol: xml``, are described in the system prompt in the
original tag protocol). Each tool call the model makes becomes one env step;
when a reply holds several, they are stepped in order before the model is
asked again. A reply without a tool call is read as tags, then handed to the
env as it is, so the env's refusal tells the model what is valid. Malformed
tool calls are recorded as the agent's invalid actions; the episode goes on.

Provider failures: 429, 5xx, timeouts, dropped connections and malformed
responses are retried with exponential backoff and jitter; permanent errors
(401, 403, 404, other 4xx) and exhausted retries raise
:class:`~stackgym.core.errors.InfraError`, which ends the episode as an
infrastructure error, never as the model failing the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stackgym.agents import xml_protocol
from stackgym.agents.prices import load_prices
from stackgym.core.agents import Agent, AgentTurn
from stackgym.core.errors import ConfigError, InfraError
from stackgym.core.traces import ToolCall, Usage

if TYPE_CHECKING:
    import openai

    from stackgym.core.env import Env
    from stackgym.core.models import Observation

#: Agent-name prefixes served by this module.
LLM_FAMILIES = ("openai", "openrouter")

DEFAULT_SYSTEM_PROMPT = (
    "You are an agent working inside an environment that you can only change through "
    "its tools. Read the task, investigate with the tools, and finish the task with the "
    "tool meant for finishing it. Every tool result comes back to you as the next message."
)


class LLMSettings(BaseModel):
    """Everything that shapes an LLM agent's calls; recorded in every trace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: None leaves the provider's default.
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    #: Sampling seed sent to the provider (offset by the repeat number in experiments).
    seed: int | None = Field(default=None, ge=0)
    #: ``tools``: native tool calling; ``xml``: the tag protocol; ``auto``: native,
    #: switching to tags when the provider says the model has no tool support.
    protocol: Literal["auto", "tools", "xml"] = "auto"
    #: Replaces the env's system prompt (``info["system_prompt"]``) and the default.
    system_prompt: str | None = None
    #: A price table merged over the packaged one (see ``stackgym.agents.prices``).
    price_table: str | None = None
    call_timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0, le=50)
    backoff_s: float = Field(default=1.0, ge=0)
    max_backoff_s: float = Field(default=60.0, ge=0)


@dataclass(frozen=True)
class Provider:
    """Where and how to reach an OpenAI-compatible endpoint."""

    name: str
    base_url: str
    api_key_env: str
    api_key: str = field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, family: str) -> Provider:
        """The provider of an agent family, from the standard environment variables.

        Raises :class:`ConfigError` when the API key variable is not set, so a
        run stops before any episode starts.
        """
        if family == "openai":
            base_url = os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
            key_env, headers = "OPENAI_API_KEY", ()
        elif family == "openrouter":
            base_url = os.environ.get("OPENROUTER_BASE_URL") or "https://openrouter.ai/api/v1"
            key_env, headers = "OPENROUTER_API_KEY", (("X-Title", "stackgym"),)
        else:
            raise ConfigError(f"unknown LLM provider family {family!r}", "use openai or openrouter")
        key = os.environ.get(key_env)
        if not key:
            raise ConfigError(
                f"{key_env} is not set; the {family}:MODEL agents need it to call {base_url}",
                f"export {key_env}=... (for a local server that needs no key, any value works)",
            )
        return cls(family, base_url.rstrip("/"), key_env, key, headers)


class ClientPool:
    """One ``openai`` client per endpoint, shared by every agent of a run.

    Agents are made per episode; sharing the client shares its connection pool,
    so hundreds of concurrent episodes reuse a few keep-alive connections
    instead of opening (and TLS-handshaking) one each.
    """

    def __init__(self) -> None:
        self._async: dict[tuple[Any, ...], openai.AsyncOpenAI] = {}
        self._sync: dict[tuple[Any, ...], openai.OpenAI] = {}

    @staticmethod
    def _key(provider: Provider) -> tuple[Any, ...]:
        return (provider.base_url, provider.api_key, provider.headers)

    def async_client(self, provider: Provider) -> openai.AsyncOpenAI:
        import openai

        key = self._key(provider)
        client = self._async.get(key)
        if client is None:
            # The client's own retries are off: ours classify errors and record them.
            client = openai.AsyncOpenAI(
                base_url=provider.base_url,
                api_key=provider.api_key,
                max_retries=0,
                default_headers=dict(provider.headers),
                http_client=_async_http_client(),
            )
            self._async[key] = client
        return client

    def sync_client(self, provider: Provider) -> openai.OpenAI:
        import openai

        key = self._key(provider)
        client = self._sync.get(key)
        if client is None:
            client = openai.OpenAI(
                base_url=provider.base_url,
                api_key=provider.api_key,
                max_retries=0,
                default_headers=dict(provider.headers),
            )
            self._sync[key] = client
        return client

    async def aclose(self) -> None:
        """Close every client (call from the event loop the async clients ran on)."""
        for client in self._async.values():
            await client.close()
        self._async.clear()
        self.close()

    def close(self) -> None:
        """Close the synchronous clients; async ones need :meth:`aclose`."""
        for client in self._sync.values():
            client.close()
        self._sync.clear()


#: Connections one endpoint may hold open (the runner's concurrency is the real limit).
MAX_CONNECTIONS = 4096


def _async_http_client() -> Any:
    """The openai client's aiohttp transport, else its httpx one, without a small pool cap.

    aiohttp parses HTTP in C: at high concurrency it halves the client's CPU
    per call (see benchmarks/README.md), which is what bounds steps per second.
    """
    import openai

    limits = type(openai.DEFAULT_CONNECTION_LIMITS)(
        max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
    )
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return openai.DefaultAsyncHttpxClient(limits=limits)
    return openai.DefaultAioHttpClient(limits=limits)


def _completion_type() -> type:
    # The typed ``chat.completions.create`` walks every message and tool through
    # the SDK's parameter transformer, which costs milliseconds per call once a
    # conversation grows (it dominated the harness's per-step overhead). The
    # client's documented low-level ``post`` sends our already-plain JSON body
    # and still parses the answer into ``ChatCompletion`` and raises the SDK's
    # typed errors.
    from openai.types.chat import ChatCompletion

    return ChatCompletion


class _MalformedResponse(Exception):
    """The provider answered 200 with something that is not a chat completion."""


def observation_text(observation: Observation) -> str:
    """What the model reads of an observation: its text, and the error if any."""
    text = observation.text or ""
    if observation.error and observation.error not in text:
        text = f"{text}\n\nerror: {observation.error}" if text else f"error: {observation.error}"
    return text or "(no output)"


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def _error_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
    return str(exc)


class LLMAgent(Agent):
    """A chat model choosing env actions through tool calls (or the tag protocol)."""

    def __init__(
        self,
        model: str,
        provider: Provider,
        *,
        settings: LLMSettings | None = None,
        clients: ClientPool | None = None,
        name: str | None = None,
        repeat: int = 0,
    ) -> None:
        if not model:
            raise ConfigError(
                f"{provider.name}: agent needs a model id", f"e.g. {provider.name}:gpt-4o-mini"
            )
        self.model = model
        self.name = name or f"{provider.name}:{model}"
        self.provider = provider
        self.settings = settings or LLMSettings()
        self._own_clients = clients is None
        self.clients = clients or ClientPool()
        self.price = load_prices(self.settings.price_table).price(model)
        self.seed = None if self.settings.seed is None else self.settings.seed + repeat
        self.protocol: Literal["tools", "xml"] = (
            "xml" if self.settings.protocol == "xml" else "tools"
        )
        self._rng = random.Random()
        #: Calls that failed and were retried, over the agent's life.
        self.retries = 0
        self._reset_conversation()

    # -- the Agent protocol ---------------------------------------------------------

    def params(self) -> dict[str, Any]:
        params = self.settings.model_dump(exclude_none=True)
        params.update(provider=self.provider.name, base_url=self.provider.base_url)
        params["protocol_used"] = self.protocol
        if self.seed is not None:
            params["seed"] = self.seed
        return params

    def reset(self, env: Env, observation: Observation, info: dict[str, Any]) -> None:
        self._reset_conversation()
        self.tools = env.tools()
        self.env_prompt = info.get("system_prompt") or observation.metadata.get("system_prompt")
        self.messages = [
            {"role": "system", "content": self._system_prompt()},
            {"role": "user", "content": observation_text(observation)},
        ]

    def act(self, observation: Observation) -> AgentTurn:
        pending = self._take_observation(observation)
        if pending is not None:
            return pending
        return self._decide(self._complete_sync())

    async def aact(self, observation: Observation) -> AgentTurn:
        pending = self._take_observation(observation)
        if pending is not None:
            return pending
        return self._decide(await self._complete_async())

    def close(self) -> None:
        if self._own_clients:
            self.clients.close()

    async def aclose(self) -> None:
        """Close the agent's own clients (shared pools are closed by their owner)."""
        if self._own_clients:
            await self.clients.aclose()

    # -- conversation ---------------------------------------------------------------

    def _reset_conversation(self) -> None:
        self.tools: list[dict[str, Any]] = []
        self.env_prompt: str | None = None
        self.messages: list[dict[str, Any]] = []
        #: Tool calls of the last reply not yet stepped.
        self._queue: deque[dict[str, Any]] = deque()
        #: How the next observation goes back: as the result of this tool call id,
        #: or (None) as a user message.
        self._answer_to: str | None = None
        self._started = False

    def _system_prompt(self) -> str:
        prompt = self.settings.system_prompt or self.env_prompt or DEFAULT_SYSTEM_PROMPT
        if self.protocol == "xml":
            prompt = f"{prompt}\n\n{xml_protocol.tools_prompt(self.tools)}"
        return prompt

    def _take_observation(self, observation: Observation) -> AgentTurn | None:
        """Feed the last step's observation back; step a queued tool call if any."""
        if self._started:
            text = observation_text(observation)
            if self._answer_to is not None:
                self.messages.append(
                    {"role": "tool", "tool_call_id": self._answer_to, "content": text}
                )
            else:
                self.messages.append({"role": "user", "content": text})
        self._started = True
        if self._queue:
            return self._step_call(self._queue.popleft())
        return None

    def _step_call(self, call: dict[str, Any], **extra: Any) -> AgentTurn:
        self._answer_to = call["id"]
        function = call["function"]
        action = {"name": function["name"], "arguments": function["arguments"]}
        record = ToolCall(id=call["id"], name=function["name"], arguments=function["arguments"])
        return AgentTurn(action=action, tool_calls=[record], **extra)

    def _decide(self, reply: tuple[dict[str, Any], Usage, str | None]) -> AgentTurn:
        message, usage, reasoning = reply
        calls = message.get("tool_calls") or []
        content = message.get("content")
        self.messages.append(message)
        if calls:
            self._queue.extend(calls[1:])
            return self._step_call(calls[0], reasoning=reasoning, usage=usage)
        self._answer_to = None
        action: Any = xml_protocol.parse_action(content or "", self.tools)
        if action is None:
            # Not a call at all: the env refuses it and says what is valid.
            action = content or ""
        return AgentTurn(action=action, reasoning=reasoning, usage=usage)

    # -- provider calls -------------------------------------------------------------

    def _request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": self.messages}
        if self.protocol == "tools" and self.tools:
            request["tools"] = self.tools
        if self.settings.temperature is not None:
            request["temperature"] = self.settings.temperature
        if self.settings.max_tokens is not None:
            request["max_tokens"] = self.settings.max_tokens
        if self.seed is not None:
            request["seed"] = self.seed
        return request

    def _parse(self, response: Any) -> tuple[dict[str, Any], Usage, str | None]:
        choices = getattr(response, "choices", None)
        if not choices:
            raise _MalformedResponse("the response has no choices")
        message = choices[0].message
        if message is None:
            raise _MalformedResponse("the response's first choice has no message")
        content = message.content
        extra = getattr(message, "model_extra", None) or {}
        reasoning = content or extra.get("reasoning") or extra.get("reasoning_content")
        calls = []
        for index, call in enumerate(message.tool_calls or []):
            function = getattr(call, "function", None)
            if function is None:
                continue
            calls.append(
                {
                    "id": call.id or f"call_{len(self.messages)}_{index}",
                    "type": "function",
                    "function": {
                        "name": function.name or "",
                        "arguments": function.arguments or "",
                    },
                }
            )
        history: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            history["tool_calls"] = calls
        usage = self._usage(getattr(response, "usage", None))
        return history, usage, reasoning

    def _usage(self, reported: Any) -> Usage:
        prompt = int(getattr(reported, "prompt_tokens", 0) or 0)
        completion = int(getattr(reported, "completion_tokens", 0) or 0)
        cost = getattr(reported, "cost", None)
        if not isinstance(cost, int | float) or isinstance(cost, bool):
            cost = None if self.price is None else self.price.cost(prompt, completion)
        return Usage(prompt_tokens=prompt, completion_tokens=completion, calls=1, cost_usd=cost)

    def _tools_unsupported(self, exc: BaseException) -> bool:
        """Does this error say the model cannot take tools (so ``auto`` falls back)?"""
        return (
            self.settings.protocol == "auto"
            and self.protocol == "tools"
            and _status(exc) in (400, 404, 422)
            and "tool" in _error_message(exc).lower()
        )

    def _fall_back_to_tags(self) -> None:
        self.protocol = "xml"
        if self.messages and self.messages[0].get("role") == "system":
            self.messages[0] = {"role": "system", "content": self._system_prompt()}

    def _retryable(self, exc: BaseException) -> bool:
        import openai

        if isinstance(exc, openai.APIConnectionError | _MalformedResponse | json.JSONDecodeError):
            return True  # includes timeouts; JSONDecodeError: a 200 whose body is not JSON
        code = _status(exc)
        return code is not None and (code in (408, 409, 429) or code >= 500)

    def _delay(self, attempt: int, exc: BaseException) -> float:
        """Exponential backoff with jitter; a provider's Retry-After is honoured (capped)."""
        cap = self.settings.max_backoff_s
        delay = min(cap, self.settings.backoff_s * 2**attempt) * self._rng.uniform(0.5, 1.0)
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        if header:
            with contextlib.suppress(ValueError):  # an HTTP date: keep our own delay
                delay = max(delay, min(cap, float(header)))
        return delay

    def _give_up(self, exc: BaseException, attempts: int) -> InfraError:
        code = _status(exc)
        where = f"{self.provider.name} ({self.provider.base_url}), model {self.model!r}"
        detail = _error_message(exc)
        if code == 401 or code == 403:
            return InfraError(
                f"{where}: the API key was refused (HTTP {code}): {detail}",
                f"check {self.provider.api_key_env}",
            )
        if code == 404:
            return InfraError(
                f"{where}: not found (HTTP 404): {detail}",
                "check the model id and the base URL",
            )
        if code is not None and not self._retryable(exc):
            return InfraError(f"{where}: request refused (HTTP {code}): {detail}")
        kind = type(exc).__name__ if code is None else f"HTTP {code}"
        return InfraError(
            f"{where}: gave up after {attempts} attempt(s); last error {kind}: {detail}",
            "the provider is failing or hung; resume the run later",
        )

    async def _complete_async(self) -> tuple[dict[str, Any], Usage, str | None]:
        client = self.clients.async_client(self.provider)
        attempt = 0
        while True:
            try:
                response = await client.post(
                    "/chat/completions",
                    cast_to=_completion_type(),
                    body=self._request(),
                    options={"timeout": self.settings.call_timeout_s},
                )
                return self._parse(response)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._tools_unsupported(exc):
                    self._fall_back_to_tags()
                    continue
                if not self._retryable(exc) or attempt >= self.settings.max_retries:
                    raise self._give_up(exc, attempt + 1) from exc
                self.retries += 1
                await asyncio.sleep(self._delay(attempt, exc))
                attempt += 1

    def _complete_sync(self) -> tuple[dict[str, Any], Usage, str | None]:
        client = self.clients.sync_client(self.provider)
        attempt = 0
        while True:
            try:
                response = client.post(
                    "/chat/completions",
                    cast_to=_completion_type(),
                    body=self._request(),
                    options={"timeout": self.settings.call_timeout_s},
                )
                return self._parse(response)
            except Exception as exc:
                if self._tools_unsupported(exc):
                    self._fall_back_to_tags()
                    continue
                if not self._retryable(exc) or attempt >= self.settings.max_retries:
                    raise self._give_up(exc, attempt + 1) from exc
                self.retries += 1
                time.sleep(self._delay(attempt, exc))
                attempt += 1


def _family_agent(
    family: str,
    model: str,
    env_id: str,
    *,
    settings: LLMSettings | Mapping[str, Any] | None = None,
    clients: ClientPool | None = None,
    repeat: int = 0,
) -> LLMAgent:
    if isinstance(settings, Mapping):
        settings = LLMSettings.model_validate(dict(settings))
    return LLMAgent(
        model,
        Provider.from_env(family),
        settings=settings,
        clients=clients,
        name=f"{family}:{model}",
        repeat=repeat,
    )


def openai_agent(model: str, env_id: str, **kwargs: Any) -> LLMAgent:
    """``openai:MODEL``: ``$OPENAI_BASE_URL`` (default OpenAI) with ``$OPENAI_API_KEY``."""
    return _family_agent("openai", model, env_id, **kwargs)


def openrouter_agent(model: str, env_id: str, **kwargs: Any) -> LLMAgent:
    """``openrouter:MODEL``: OpenRouter with ``$OPENROUTER_API_KEY``."""
    return _family_agent("openrouter", model, env_id, **kwargs)


def is_llm_agent(name: str) -> bool:
    """Is ``name`` one of this module's ``family:MODEL`` agents?"""
    prefix, sep, _ = name.partition(":")
    return bool(sep) and prefix in LLM_FAMILIES
