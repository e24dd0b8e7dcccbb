#!/usr/bin/env bash
# System packages the tests need besides the Python environment (apt-get, as root or with sudo):
# sshd and rsync for tests/pipelines/test_cluster_loopback.py (`ray up` on a loopback cluster),
# Debian's chromium (headless) for the pages the tests open (MLflow UI, `dvc plots show`).
#   bash scripts/test-system.sh      (idempotent: installs only what is missing)
set -euo pipefail
if { command -v sshd || [ -x /usr/sbin/sshd ]; } >/dev/null 2>&1 \
   && command -v rsync >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no apt-get; install openssh-server, rsync and chromium for the full test suite" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server rsync chromium >/dev/null
