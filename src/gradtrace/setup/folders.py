"""Run and sweep folder names from overrides: no torch, no Hydra, so that reading a sweep back
(gradtrace summarize) loads neither."""

from __future__ import annotations

import hashlib
import re

FOLDER_NAME_MAX = 80  # characters of the overrides in a run folder's name


def folder_suffix(overrides: str) -> str:
    """`_<overrides>` for a run folder's name, safe as one folder name: quotes and brackets
    dropped, path separators, spaces and other shell trouble turned into '-', and at most
    FOLDER_NAME_MAX characters, the rest replaced by a hash of the whole that keeps names apart.
    The overrides themselves are in the run's .hydra/overrides.yaml."""
    if not overrides:
        return ""
    safe = re.sub(r"[\[\]{}()'\"]", "", overrides)
    safe = re.sub(r"[^A-Za-z0-9._=,+%@-]+", "-", safe).strip("-.") or "-"
    if len(safe) > FOLDER_NAME_MAX:
        digest = hashlib.sha1(overrides.encode()).hexdigest()[:10]
        safe = f"{safe[: FOLDER_NAME_MAX - 11]}-{digest}"
    return f"_{safe}"
