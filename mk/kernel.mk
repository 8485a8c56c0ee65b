# mk/kernel.mk — the kernel tier (included from the Makefile).
#
# Expects from the Makefile: VENV (the venv directory), PY ($(VENV)/bin/python), and a
# `setup` target that installs $(KERNEL_APT_PACKAGES) and the venv (with virtme-ng).
#
#   make kernel-cache   fetch Debian's stock kernel into $(KERNEL_CACHE) (idempotent)
#   make test-kernel    the whole test selection inside the VM (PYTEST_ARGS=... to narrow)
#   make kernel-apt     install the apt packages below if any is missing (needs root)
#   make kernel-clean   drop the kernel cache
#
# `make test` needs nothing from here: the tiers plugin (tests/tiers.py) boots the VM on
# its own for the tests this kernel cannot run, fetching the kernel on first use.

KERNEL_CACHE ?= .cache/kernel
# Whole-VM time limit for test-kernel (seconds); TCG runs the full suite slowly.
KERNEL_TIER_TIMEOUT ?= 3600
PYTEST_ARGS ?=

# Debian packages the kernel tier needs on the host (install with --no-install-recommends):
#   qemu-system-x86  the VM (TCG, or KVM where it works); seabios/ipxe come as Depends
#   busybox-static   virtme-ng builds the guest initramfs with it
#   udev             virtme-ng's guest init runs udevd to name its virtio ports; without
#                    it the guest's output and exit code are lost
#   kmod             modprobe in the guest, depmod for the cache
#   iproute2 iputils-ping procps  the self-tests (ip netns, ping, sysctl)
#   openvswitch-switch ipvsadm ipset nftables iptables  userspace for OVS/IPVS/netfilter
KERNEL_APT_PACKAGES := qemu-system-x86 busybox-static udev kmod iproute2 iputils-ping \
	procps openvswitch-switch ipvsadm ipset nftables iptables

.PHONY: kernel-cache test-kernel kernel-apt kernel-clean

kernel-cache:
	NETLAB_KERNEL_CACHE=$(abspath $(KERNEL_CACHE)) $(PY) -m tests.kernel.cache --if-needed

test-kernel: kernel-cache
	NETLAB_KERNEL_CACHE=$(abspath $(KERNEL_CACHE)) $(PY) -m pytest --kernel-tier=all \
		--kernel-tier-timeout=$(KERNEL_TIER_TIMEOUT) $(PYTEST_ARGS)

kernel-apt:
	@missing=$$(for p in $(KERNEL_APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
		|| echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends $$missing; \
	else echo "kernel tier apt packages: all installed"; fi

kernel-clean:
	rm -rf $(KERNEL_CACHE)
