#!/bin/sh
# scripts/prepare.sh - npm's `prepare`: build dist/src from src (tsconfig.build.json), so that
# `npm install -g` from the git repository, or from a clone of it, gives a built smtpscreen.
#
# Two npm behaviours are worked around here (npm/cli#8440, open):
# - For a git dependency npm runs `npm install` in a temporary clone to prepare it, but that
#   inner npm inherits `global=true` from `npm install -g`: it installs no devDependencies, so
#   tsc is missing. Then they are installed here, locally (--global=false), without scripts.
# - That inner global install also links <global prefix>/lib/node_modules/smtpscreen to the
#   temporary clone, and the outer npm then extracts the package through that link into the
#   clone, which npm deletes afterwards: the command would point nowhere. When the link points
#   at this very clone (a directory under npm's cache, _cacache/tmp/git-clone*), it is removed,
#   and the outer npm installs a real directory.
# Installing a packed tarball never runs this (the tarball carries dist/src).
set -eu
if [ ! -x node_modules/.bin/tsc ]; then
  npm install --global=false --no-save --ignore-scripts --include=dev --no-audit --no-fund
fi
node_modules/.bin/tsc -p tsconfig.build.json
here=$(pwd -P)
case "$here" in
  */_cacache/tmp/git-clone*)
    if [ "${npm_config_global:-}" = "true" ]; then
      link="$(npm prefix -g)/lib/node_modules/${npm_package_name:-smtpscreen}"
      if [ -L "$link" ] && [ "$(readlink -f "$link")" = "$here" ]; then
        rm -f "$link"
      fi
    fi
    ;;
esac
