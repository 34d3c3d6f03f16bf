"""Running the real designgate console script against a database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def designgate(
    database_url: str, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    script = Path(sys.executable).parent / "designgate"
    env = {**os.environ, "DESIGNGATE_DATABASE_URL": database_url}
    return subprocess.run(
        [str(script), *args], env=env, input=stdin, capture_output=True, timeout=120, check=False
    )
