"""Size of each function's deployment package: the release binary zipped as
`bootstrap` (what a `provided.al2023` function ships), deflate level 9,
executable bit set, as `cargo lambda build --output-format zip` and
`sam build` produce it."""

from __future__ import annotations

import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

from common import FUNCTIONS, RELEASE_DIR, REPO, RESULTS_DIR

LIMIT_BYTES = 4_000_000  # the target: <= 4 MB (decimal, the stricter reading)
BUILD_CMD = ["cargo", "build", "--release", "--bins"] + [a for f in FUNCTIONS for a in ("-p", f)]


def build() -> dict[str, Any]:
    """`cargo build --release` of the five functions (a no-op when up to
    date: the first build takes about 6 minutes on 2 cores)."""
    started = time.time()
    proc = subprocess.run(BUILD_CMD, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(BUILD_CMD)} failed:\n{proc.stderr[-3000:]}")
    return {"command": " ".join(BUILD_CMD), "seconds": round(time.time() - started, 1)}


def zip_bootstrap(binary: Path, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(info, binary.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.stat().st_size


def run(release_dir: Path | None = None) -> dict[str, Any]:
    release_dir = release_dir or RELEASE_DIR
    rows = []
    for name in FUNCTIONS:
        binary = release_dir / name
        if not binary.exists():
            raise FileNotFoundError(f"{binary} missing (build the release binaries first)")
        zip_bytes = zip_bootstrap(binary, RESULTS_DIR / "zips" / f"{name}.zip")
        rows.append(
            {
                "function": name,
                "binaryBytes": binary.stat().st_size,
                "zipBytes": zip_bytes,
                "underLimit": zip_bytes <= LIMIT_BYTES,
            }
        )
    return {
        "limitBytes": LIMIT_BYTES,
        "rows": rows,
        "allUnderLimit": all(r["underLimit"] for r in rows),
        "profile": _profile(),
    }


def _profile() -> str:
    """The [profile.release] section of the root Cargo.toml, as measured."""
    text = (REPO / "Cargo.toml").read_text()
    out, inside = [], False
    for line in text.splitlines():
        if line.strip().startswith("["):
            inside = line.strip() == "[profile.release]"
            continue
        if inside and line.strip():
            out.append(line.strip())
    return ", ".join(out)
