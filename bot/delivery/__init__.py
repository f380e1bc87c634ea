"""Proactive delivery: the outbox, its sender per channel, the rate limiter, quiet hours."""
