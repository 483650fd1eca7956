"""opstui: a terminal dashboard for production services, with runbooks one key away."""

__version__ = "0.1.0"
