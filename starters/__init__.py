"""Durable-client functions that start and steer rollouts: HTTP API, queue, retention timer."""
