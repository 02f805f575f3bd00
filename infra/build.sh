#!/usr/bin/env bash
# `sam build` of the system (infra/template.yaml): a release build of the
# whole workspace with cargo-lambda, one zip-ready bootstrap per function in
# infra/.aws-sam/build/. Slow (720 s cold here on 2 cores, shared with other
# builds), so it is not part of `make test`: run it before `sam deploy`, or in
# CI on its own.
#
# Usage: infra/build.sh [x86_64|arm64]      (default: x86_64)
#   The default is the template's `Architecture` default (tests/infra checks
#   they agree): x86_64 always builds here and in CI. arm64 needs the
#   aarch64-unknown-linux-gnu standard library (cargo-lambda runs `rustup
#   target add` itself, which needs the Rust distribution server), so it is
#   opt-in. Deploy with the same architecture:
#   sam deploy --parameter-overrides Architecture=<the same> ...
set -euo pipefail

ARCH="${1:-x86_64}"
case "$ARCH" in
    x86_64 | arm64) ;;
    *) echo "usage: $0 [x86_64|arm64]" >&2; exit 2 ;;
esac

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=venv.sh
source "$INFRA/venv.sh"
ensure_venv "$INFRA/.venv" "$INFRA/requirements-sam.txt"

# sam's rust-cargolambda workflow runs `cargo lambda build`: the PyPI
# cargo-lambda (and its zig linker) in the venv provide it.
export PATH="$INFRA/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
# SAM's rust-cargolambda build method is a beta feature: without this (or
# --beta-features) `sam build` stops to ask, or fails when not interactive.
export SAM_CLI_BETA_RUST_CARGO_LAMBDA=1
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
cd "$INFRA"

start=$(date +%s)
sam build --template-file template.yaml --parameter-overrides "Architecture=$ARCH"
echo "== sam build ($ARCH) took $(( $(date +%s) - start )) s"

# What Lambda will run: each function's bootstrap, its ELF machine, and the
# size of the zip that sam deploy uploads (deflate, like sam's own zip).
EXPECT="$ARCH" python3 - <<'PY'
import os
import io, pathlib, struct, sys, zipfile

MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}
bad = False
for fn in sorted(pathlib.Path(".aws-sam/build").glob("*Function")):
    boot = fn / "bootstrap"
    if not boot.is_file():
        print(f"missing {boot}", file=sys.stderr)
        bad = True
        continue
    data = boot.read_bytes()
    machine = MACHINES.get(struct.unpack_from("<H", data, 18)[0], "unknown") if data[:4] == b"\x7fELF" else "not ELF"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("bootstrap"), data, compress_type=zipfile.ZIP_DEFLATED)
    if machine != os.environ["EXPECT"]:
        print(f"{boot} is {machine}, not {os.environ['EXPECT']}", file=sys.stderr)
        bad = True
    print(f"{fn.name:<24} {machine:<8} bootstrap {len(data) / 2**20:5.1f} MiB  zip {len(buf.getvalue()) / 2**20:4.1f} MiB")
sys.exit(1 if bad else 0)
PY
