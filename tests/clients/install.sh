#!/usr/bin/env bash
# Installs the relying parties that tests/browser/{hub,django}.rs run against
# Tessera: a Python venv with JupyterHub, oauthenticator, Django and
# mozilla-django-oidc (exact versions, tests/clients/requirements.txt), and
# configurable-http-proxy from tests/clients/package-lock.json.
#
#   tests/clients/install.sh [DEST]        (default: target/clients)
#
# Then point the tests at them:
#
#   export RELYING_PARTY_PYTHON=DEST/venv/bin/python
#   export RELYING_PARTY_CHP=DEST/chp/node_modules/.bin/configurable-http-proxy
#
# Idempotent and quiet: a part whose pins have not changed since the last
# run is left as it is.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/../../target/clients}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Python 3.10 or later: the oldest that JupyterHub 6 and Django 5.2 support.
python="${PYTHON:-python3}"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    { echo "install.sh: $python is older than 3.10" >&2; exit 1; }

venv="$dest/venv"
want="$(stamp_of "$here/requirements.txt")"
if [ "$(cat "$venv/.tessera-stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input -r "$here/requirements.txt"
    echo "$want" >"$venv/.tessera-stamp"
fi

chp="$dest/chp"
want="$(stamp_of "$here/package.json" "$here/package-lock.json")"
if [ "$(cat "$chp/.tessera-stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$chp"
    mkdir -p "$chp"
    cp "$here/package.json" "$here/package-lock.json" "$chp/"
    (cd "$chp" && npm ci --no-audit --no-fund --silent)
    echo "$want" >"$chp/.tessera-stamp"
fi
