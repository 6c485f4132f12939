"""A Letta server stand-in for the sandbox and tests (``python -m voiceops.letta_standin``).

It speaks the Letta 0.16.8 REST endpoints voiceops uses, with sample agents and a
deterministic brain (:mod:`voiceops.letta_standin.brain`), plus fault knobs over HTTP.
"""
