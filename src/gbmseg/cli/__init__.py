"""The ``gbmseg`` command: one subcommand per step, each a thin call into ``gbmseg.stages``.

``base`` holds the registry, ``pipeline`` / ``daily`` / ``ops`` the commands with their
arguments, ``app`` the parser and the entry point ``gbmseg.cli.app:main``.
"""
