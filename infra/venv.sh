# Sourced by infra/check.sh and infra/build.sh: the pinned tool venvs.
# ensure_venv VENV REQUIREMENTS: (re)builds VENV when REQUIREMENTS changed.

ensure_venv() {
    local venv="$1" requirements="$2" stamp
    stamp="$(sha256sum "$requirements" | cut -d' ' -f1)"
    if [[ -x "$venv/bin/python" && "$(cat "$venv/.requirements-sha256" 2>/dev/null)" == "$stamp" ]]; then
        return
    fi
    echo "== installing $(basename "$requirements") into $venv"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
    echo "$stamp" >"$venv/.requirements-sha256"
}
