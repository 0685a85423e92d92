"""Microsoft's own Durable Functions apps, unchanged, on `devhost start` over HTTP (sources.py says where
they come from; the README's "Microsoft's apps" lists what each test checks)."""
