"""A target simulator for local runs and tests (enabled by TARGET_SIMULATOR_ENABLED; off in Azure)."""
