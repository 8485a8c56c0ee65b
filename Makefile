# netlab: `sudo make demo` and `sudo make test` work on a fresh Debian/Ubuntu machine.
# Every target is idempotent: setup installs only what is missing.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
include mk/kernel.mk
include mk/image.mk

# A real browser for the test that opens `netlab graph`'s HTML page (81 MB download, about
# 290 MB installed, about 50 s to install here).
BROWSER_APT_PACKAGES := chromium

# Debian packages the lab drives (datapaths, rule loaders, probes), plus the kernel tier's
# (a VM with Debian's stock kernel for IPVS, the OVS kernel datapath, ipvlan, netem).
# LAB_APT_PACKAGES is also what the container image installs (`make apt-lab`, Containerfile).
LAB_APT_PACKAGES := iproute2 iptables nftables ipset nfacct conntrack openvswitch-switch ipvsadm nginx-light \
                ethtool tcpdump iputils-ping iperf3 curl kmod procps util-linux graphviz \
                python3 python3-venv python3-pip
APT_PACKAGES := $(LAB_APT_PACKAGES) $(KERNEL_APT_PACKAGES) $(BROWSER_APT_PACKAGES)

.PHONY: setup apt venv demo test test-unit bench bench-tunnel clean help

help:
	@echo "sudo make demo   set up, then build the overview lab, check it and print the report"
	@echo "sudo make test   set up, then run the test suite"
	@echo "make bench       time up/check/down of the 200-pod lab"
	@echo "make test-kernel the whole suite inside a VM with Debian's stock kernel"
	@echo "make bench-tunnel  10x10 tunnel lab up/down; pod-to-pod TCP tunnel vs VPC (iperf3)"
	@echo "sudo make image  the container image localhost/netlab:latest (Podman; no registry needed)"
	@echo "sudo make test-image  the image, classroom and split-lab tests (tests/container)"

setup: apt venv kernel-cache

# Installs only what is missing; refreshes the package lists when there are none (the
# kernel tier fetches Debian's kernel package with apt-get download). The packages' own
# services (the host's nginx, Open vSwitch) are not started (policy-rc.d for the duration of
# the install): the lab runs its own daemons inside its namespaces and needs none on the host.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ] || ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then \
	    apt-get update -q; \
	fi; \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    norc=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && norc=1; fi; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; rc=$$?; \
	    [ -n "$$norc" ] && rm -f /usr/sbin/policy-rc.d; exit $$rc; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

demo: setup
	$(VENV)/bin/netlab demo

test: setup
	$(PY) -m pytest tests

test-unit: venv
	$(PY) -m pytest tests/unit tests/plan

bench: setup
	$(PY) bench/lab_scale.py

bench-tunnel: setup
	$(PY) bench/tunnel.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
