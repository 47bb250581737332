"""Process-level helpers shared by the long-running roles (server, scheduler)."""
