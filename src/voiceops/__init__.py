"""voiceops: keeps a LiveKit voice-agent deployment alive and honest."""

__version__ = "0.1.0"
