"""The agent that runs in each job process; ``entrypoint`` is the default ``workers.entrypoint``.

Beside it, the worker looks for ``prewarm`` (job process start-up) and ``check_config``
(worker start-up) in the entrypoint's module.
"""

from voiceops.agent.pipeline import check_config, entrypoint, prewarm

__all__ = ["check_config", "entrypoint", "prewarm"]
