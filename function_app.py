"""The Functions app: builds the DFApp and registers the blueprints. Nothing else lives here."""

import azure.durable_functions as df
import azure.functions as func

from activities import reports, targets
from entities import target_lock
from orchestrators import rollout_wave, update_rollout
from simulator import target_simulator
from starters import http_api, queue_starter, retention
from update_service.settings import Settings

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    update_rollout.bp,
    rollout_wave.bp,
    targets.bp,
    reports.bp,
    target_lock.bp,
    http_api.bp,
    queue_starter.bp,
    retention.bp,
):
    app.register_functions(blueprint)

# Simulated targets for local runs; TARGET_SIMULATOR_ENABLED is false in Azure.
if Settings.from_env().simulator_enabled:
    app.register_functions(target_simulator.bp)
