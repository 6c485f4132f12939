"""The browser SDK the debug page runs on (``livekit-client``), installed by npm, never a CDN.

`npm ci` (run by `make run` / `make test`, pinned in package.json and package-lock.json) puts
it in ``<repo>/node_modules``; ``$VOICEOPS_NODE_MODULES`` names another node_modules folder.
The proxy serves its UMD bundle under a path that carries the version, so browsers may cache
it for a year: a new version is a new URL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PACKAGE: Final = "livekit-client"
BUNDLE: Final = "livekit-client.umd.js"
ROUTE_PREFIX: Final = "/debug/vendor"
# <repo>/src/voiceops/proxy/vendor.py -> <repo>; only meaningful in a source checkout.
_REPO_ROOT: Final = Path(__file__).resolve().parents[3]
_VERSION: Final = re.compile(r"[0-9A-Za-z.+-]{1,64}")  # it becomes part of a URL path


@dataclass(frozen=True)
class Sdk:
    version: str
    bundle: Path

    @property
    def url_path(self) -> str:
        return f"{ROUTE_PREFIX}/{PACKAGE}/{self.version}/{BUNDLE}"


def node_modules_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$VOICEOPS_NODE_MODULES`` when set, else the checkout's own node_modules."""
    configured = env.get("VOICEOPS_NODE_MODULES", "")
    return Path(configured) if configured else _REPO_ROOT / "node_modules"


def find_sdk(env: Mapping[str, str] = os.environ) -> Sdk | None:
    """The installed livekit-client (version from its own package.json), or None."""
    pkg = node_modules_dir(env) / PACKAGE
    try:
        version = json.loads((pkg / "package.json").read_text("utf-8"))["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    bundle = pkg / "dist" / BUNDLE
    if not isinstance(version, str) or not _VERSION.fullmatch(version) or not bundle.is_file():
        return None
    return Sdk(version, bundle)
