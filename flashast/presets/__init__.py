"""Built-in presets. Each module registers itself through the public kind API (`register(registry)`)."""
