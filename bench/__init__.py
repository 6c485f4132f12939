"""voiceops benchmarks: each measures voiceops' path and a baseline in the same run and prints
the ratio against its target (``python -m bench``; see bench/README.md)."""
