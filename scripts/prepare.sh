#!/bin/sh
# scripts/prepare.sh - npm's `prepare`: build dist/src from src (tsconfig.build.json), so that a
# checkout of the git repository installed with `npm install -g ./smtpscreen` (or `npm ci`, or
# `npm pack` in it) is built.
#
# `npm install -g DIR` runs this in DIR as a global install, which installs no
# devDependencies: when tsc is missing they are installed here first, locally (--global=false),
# without running scripts. Installing a packed tarball never runs this (the tarball carries
# dist/src).
# XXX `npm install -g git+URL` does not work for a package that builds in prepare: npm prepares
# the temporary clone with an inner `npm install` that inherits global=true and installs into
# the global prefix (npm/cli#8440, open). The README shows the checkout recipe instead.
set -eu
if [ ! -x node_modules/.bin/tsc ]; then
  npm install --global=false --no-save --ignore-scripts --include=dev --no-audit --no-fund
fi
node_modules/.bin/tsc -p tsconfig.build.json
