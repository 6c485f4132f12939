"""The agent that runs in each job process; ``entrypoint`` is the default ``workers.entrypoint``."""

from voiceops.agent.basic import entrypoint

__all__ = ["entrypoint"]
