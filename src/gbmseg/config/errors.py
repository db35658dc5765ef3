"""The configuration's error (no other imports, so every config module can raise it)."""


class ConfigError(ValueError):
    """params.yaml (or an override) is missing, malformed or names an unknown key."""
