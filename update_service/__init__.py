"""The update orchestrator service's domain: request models, validation, settings, secrets."""
