"""Agents that work on every environment (LLMs, replay), registered by prefix."""
