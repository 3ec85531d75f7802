#!/usr/bin/env bash
# Creates .venv at the repository root and installs the pinned conformance
# clients into it (conformance/requirements.txt). Idempotent: when the venv
# already holds exactly what the requirement files pin, it returns at once.
#
# The one hard part is http-parser 0.9.0, which pymesos 0.3.15 needs. It is
# published only as an sdist whose pre-generated http_parser/parser.c (Cython
# 0.29.16) includes longintrepr.h, a header Python 3.11 removed, so a plain
# `pip install pymesos` fails. We regenerate parser.c from parser.pyx with
# Cython < 3 and build it without build isolation, against the setuptools
# and wheel pinned in requirements-build.txt. pymesos then finds http-parser
# satisfied and gets the C parser it was written for (its pure-Python
# fallback, http_parser.pyparser, is a different code path we do not test).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${PANDO_VENV:-$PWD/.venv}"
py="$venv/bin/python"
pip=("$venv/bin/pip" --disable-pip-version-check --no-input)
stamp="$venv/.pando-requirements"
want="$(cat conformance/requirements-build.txt conformance/requirements.txt conformance/setup-venv.sh | sha256sum | cut -d' ' -f1)"

if [ ! -x "$py" ]; then
  python3 -m venv "$venv"
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && "$py" -c 'import http_parser.parser, pymesos, pytest, pyspark' 2>/dev/null; then
  echo "   .venv is up to date"
  exit 0
fi
rm -f "$stamp"

"${pip[@]}" install --quiet -r conformance/requirements-build.txt

if ! "$py" -c 'import http_parser.parser' 2>/dev/null \
  || [ "$("$py" -c 'import http_parser; print(http_parser.__version__)')" != "0.9.0" ]; then
  echo "   building http-parser 0.9.0 with a regenerated parser.c"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  "${pip[@]}" download --quiet --no-deps --no-binary :all: -d "$work" http-parser==0.9.0
  tar -xzf "$work"/http-parser-0.9.0.tar.gz -C "$work"
  src="$work/http-parser-0.9.0"
  # Drop the stale generated C and the macOS binary the sdist carries.
  rm -f "$src"/http_parser/parser.c "$src"/http_parser/*.so
  "$venv/bin/cython" -2 "$src"/http_parser/parser.pyx 2>"$work/cython.log" \
    || { cat "$work/cython.log" >&2; exit 1; }
  "${pip[@]}" install --quiet --no-build-isolation --no-deps --force-reinstall "$src"
fi

"${pip[@]}" install --quiet -r conformance/requirements.txt

# Prove the clients import from the venv, not from some other path; the C
# parser must be the one http_parser.http picked.
(cd / && "$py" - <<'EOF'
import http_parser.http
import http_parser.parser
assert http_parser.http.HttpParser is http_parser.parser.HttpParser, "C parser not in use"
import pymesos
from pymesos import MesosSchedulerDriver, MesosExecutorDriver, operator_v1
assert pymesos.__VERSION__ == "0.3.15", pymesos.__VERSION__
import pytest, pytest_timeout
print("   pymesos", pymesos.__VERSION__, "with http-parser's C parser; pytest", pytest.__version__)
EOF
)

echo "$want" > "$stamp"
