"""The devhost server: what `func start` + the Durable extension do, on aiohttp.

One process serves the app's HTTP functions under the route prefix, the Durable HTTP
API (public webhook and the SDK's RPC base are the same routes here), the admin
endpoint for non-HTTP functions, timer triggers, and runs the durable dispatcher.
"""
