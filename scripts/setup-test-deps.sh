#!/usr/bin/env bash
# scripts/setup-test-deps.sh - install the real programs the integration tests
# run against (Debian/Ubuntu): postfix (private test instances, see
# test/helpers/postfix.ts), swaks (SMTP client), openssl (test certificates),
# rbldnsd (DNSBL zones served from fixtures/dnsbl/, see test/helpers/rbldnsd.ts),
# bind9-dnsutils (dig, for looking at those zones by hand), util-linux
# (setpriv: runs the screener as systemd would, User= with an ambient
# capability), systemd (systemd-analyze verify checks contrib/smtpscreen.service;
# nothing is started), and for the syslog test (test/integration/syslog.test.ts):
# rsyslog (a private rsyslogd per test), fail2ban (fail2ban-regex with its stock
# postfix filter) and pflogsumm; git (the packaging test installs a fresh
# checkout, test/integration/packaging.test.ts); chromium (headless: renders
# the `smtpscreen stats --html` report in test/stats/html-render.test.ts);
# redis-server (a private redis-server per test run for the shared store, see
# test/helpers/redis.ts; its package may start a system instance on 6379:
# never used, never stopped); prometheus (promtool check metrics parses the
# admin listener's /metrics, test/integration/metrics.test.ts; the Prometheus
# server it also ships is never started); haproxy (a private haproxy per test
# run in front of the screeners, test/integration/haproxy.test.ts, from
# contrib/haproxy/haproxy.cfg; the system service its package ships is never
# started).
#
# Idempotent and non-interactive: installs only what is missing, runs
# `apt-get update` only when an install fails without it. Postfix is preseeded
# with "No configuration", so the package neither prompts nor configures or
# starts a system-wide instance; the tests never need one (each test starts its
# own instance under /tmp) and an existing one is left alone. The same holds for
# rsyslog and fail2ban: while any package that ships a service is installed, a
# policy-rc.d that exits 101 forbids maintainer scripts to start it (unless the
# machine has its own policy-rc.d already).
# Needs root for installing (uses `sudo -n` when not root).
set -euo pipefail

PKGS=(postfix swaks openssl rbldnsd bind9-dnsutils util-linux systemd rsyslog fail2ban pflogsumm git chromium redis-server prometheus haproxy)
# The program each package provides (checked on systems without dpkg).
declare -A CMD_OF=([bind9-dnsutils]=dig [util-linux]=setpriv [systemd]=systemd-analyze [rsyslog]=rsyslogd [fail2ban]=fail2ban-regex [prometheus]=promtool)
say() { printf 'setup-test-deps: %s\n' "$*"; }

installed() { # package name -> 0 when dpkg has it installed
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${PKGS[@]}"; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "${CMD_OF[$p]:-$p}" >/dev/null 2>&1 || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "not a Debian system, but every program needed is on PATH: nothing to do"
    exit 0
  fi
  say "ERROR: not a Debian system (no dpkg-query/apt-get); install these yourself: ${missing[*]}" >&2
  exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
  if installed "$p"; then
    say "$p already installed ($(dpkg-query -W -f='${Version}' "$p"))"
  else
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO=(sudo -n)
      say "not root: using sudo"
    else
      say "ERROR: must run as root (or with password-less sudo) to install: ${missing[*]}" >&2
      say "       e.g. as root: DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi

  policy_created=0
  cleanup() {
    if ((policy_created)); then "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d; fi
  }
  trap cleanup EXIT

  if [[ " ${missing[*]} " == *" postfix "* ]]; then
    say "preseeding debconf: postfix/main_mailer_type = No configuration"
    echo "postfix postfix/main_mailer_type select No configuration" | "${SUDO[@]}" debconf-set-selections
  fi
  if [[ " ${missing[*]} " == *" postfix "* || " ${missing[*]} " == *" rsyslog "* || " ${missing[*]} " == *" fail2ban "* || " ${missing[*]} " == *" redis-server "* || " ${missing[*]} " == *" prometheus "* || " ${missing[*]} " == *" haproxy "* ]]; then
    # Forbid maintainer scripts to start services while we install (policy-rc.d
    # exit 101: invoke-rc.d and deb-systemd-invoke honour it), unless the machine
    # already has its own policy.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\n# temporary, from smtpscreen scripts/setup-test-deps.sh\nexit 101\n' |
        "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
      "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
      policy_created=1
    fi
  fi

  apt_install() {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  }
  say "installing: ${missing[*]}"
  if ! apt_install; then
    say "install failed; running apt-get update and retrying"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    apt_install
  fi
  for p in "${missing[@]}"; do
    installed "$p" || { say "ERROR: $p is still not installed" >&2; exit 1; }
    say "installed $p ($(dpkg-query -W -f='${Version}' "$p"))"
  done
else
  say "nothing to install"
fi

# Report (never change) the state of a system-wide Postfix: the tests use private
# instances with their own queue directory, lock files and loopback ports.
if [[ -f /var/spool/postfix/pid/master.pid ]] &&
  pid=$(tr -d ' \n' </var/spool/postfix/pid/master.pid 2>/dev/null) &&
  [[ -n $pid && -d /proc/$pid ]]; then
  say "note: a system-wide Postfix is running (pid $pid); left alone, the tests do not use it"
else
  say "no system-wide Postfix running (none needed)"
fi
if [[ $(id -u) -ne 0 ]]; then
  say "note: the integration tests start private Postfix instances and must run as root"
fi
say "postfix $(PATH="$PATH:/usr/sbin:/sbin" postconf -dh mail_version 2>/dev/null || echo '?'), $(swaks --version 2>/dev/null | head -1 || echo 'swaks ?'), $(openssl version 2>/dev/null || echo 'openssl ?')"
# rbldnsd has no --version: its usage text (exit 1) starts with the version.
say "$(PATH="$PATH:/usr/sbin:/sbin" rbldnsd -h 2>&1 | head -1 || true), $(dig -v 2>&1 | head -1 || echo 'dig ?')"
