"""The ``voiceops`` command line: one module per command group.

:mod:`~voiceops.cli.app` (parser and entry point) registers :mod:`~voiceops.cli.run`,
:mod:`~voiceops.cli.status`, :mod:`~voiceops.cli.manage` (scale, restart, drain),
:mod:`~voiceops.cli.check`, :mod:`~voiceops.cli.dispatch` and :mod:`~voiceops.cli.emulator`;
they share :mod:`~voiceops.cli.common` (exit codes, config, socket path) and
:mod:`~voiceops.cli.client` (the control client). ``voiceops = "voiceops.cli:main"`` in
pyproject.toml names :func:`main`.
"""

from voiceops.cli.app import main

__all__ = ["main"]
