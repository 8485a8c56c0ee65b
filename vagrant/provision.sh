#!/usr/bin/env bash
# Provision the netlab Vagrant VM (Debian 12): base tools, then `make setup`, which
# installs the apt packages (iproute2, Open vSwitch, nftables, iptables, ipvsadm, ipset,
# nginx, ...) and the Python venv. Safe to run again (`vagrant provision`).
set -euo pipefail

REPO="${1:-/home/vagrant/netlab}"
export DEBIAN_FRONTEND=noninteractive

if [ ! -f "$REPO/Makefile" ]; then
    echo "provision: $REPO/Makefile not found: is the repository synced?" >&2
    exit 1
fi

apt-get update
apt-get install -y --no-install-recommends \
    make git ca-certificates sudo python3 python3-venv python3-pip kmod

# `make setup` is idempotent: apt packages and the venv in $REPO/.venv.
make -C "$REPO" setup

# The lab loads the modules it needs on demand; show what this kernel offers.
"$REPO/.venv/bin/python" - <<'PY' || true
from netlab.capabilities import detect, format_report
print(format_report(detect()))
PY

chown -R vagrant:vagrant "$REPO/.venv" 2>/dev/null || true

cat <<MSG

netlab is ready. Next:
  vagrant ssh
  cd netlab && sudo make demo      # build the default lab and check it
  sudo make test                   # the test suite (every tier runs in this VM's kernel)
MSG
