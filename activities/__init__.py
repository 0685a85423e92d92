"""Activity blueprints: all I/O of the process happens here."""
