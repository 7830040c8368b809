"""Built-in presets, written with the public API only: each module builds its `PRESET` from `Kind`s,
and every `Registry` adds them with `add_preset`, as a plugin's `register(registry)` would."""
