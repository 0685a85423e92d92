"""Durable entity blueprints."""
