# mk/image.mk — the container image, the classroom on Kubernetes, the split lab
# (included from the Makefile; README "Containers and Kubernetes", docs/scale-out.md).
#
#   make image-setup   Podman, runc, mmdebstrap, netavark, catatonit (and kubectl, for its
#                      kustomize, where none is installed); not part of `make setup`
#   make image-base    $(IMAGE_BASE): Debian bookworm minbase made here from Debian's packages
#                      (mmdebstrap | podman import), for machines that reach no registry; once
#   make image         $(IMAGE) from the Containerfile on that base
#   make image-slim    $(IMAGE) on debian:bookworm-slim (needs a container registry)
#   make test-image    image, then the container tests (tests/container, marker `container`)
#   make image-clean   remove the images built here (and Podman's local pause image)
#
# Every Podman command here reads deploy/podman/containers.conf alone (CONTAINERS_CONF):
# runc with cgroupfs, no default ulimits, no network unless asked. The host's own Podman
# configuration is not changed.

IMAGE ?= localhost/netlab:latest
IMAGE_BASE ?= localhost/netlab-base:bookworm
# The host's CA bundle, mounted into the build for pip (see the Containerfile); empty: none.
HOST_CA ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
BUILD_FLAGS := --network host $(if $(HOST_CA),--volume $(HOST_CA):/run/host-ca.crt:ro)
IMAGE_APT_PACKAGES := podman runc mmdebstrap netavark catatonit
CONTAINERS_CONF_FILE := $(abspath deploy/podman/containers.conf)
PODMAN := CONTAINERS_CONF=$(CONTAINERS_CONF_FILE) podman

.PHONY: apt-lab image-setup image-base image image-slim test-image image-clean

# Inside the image build: only the packages the lab drives (no kernel tier, no tools).
apt-lab:
	@$(MAKE) --no-print-directory apt APT_PACKAGES='$(LAB_APT_PACKAGES)'

image-setup:
	@$(MAKE) --no-print-directory apt APT_PACKAGES='$(IMAGE_APT_PACKAGES)'
	@command -v kubectl >/dev/null || $(MAKE) --no-print-directory apt APT_PACKAGES=kubernetes-client

image-base: image-setup
	@if $(PODMAN) image exists $(IMAGE_BASE); then echo "$(IMAGE_BASE): already built"; else \
	    tmp=$$(mktemp -d /var/tmp/netlab-base.XXXXXX) && \
	    mmdebstrap --quiet --variant=minbase bookworm $$tmp/base.tar && \
	    $(PODMAN) import --quiet --change 'CMD ["/bin/bash"]' $$tmp/base.tar $(IMAGE_BASE); \
	    status=$$?; rm -rf $$tmp; exit $$status; fi

# --network host: the build's apt-get and pip reach the package registries through the
# host's network, and Podman adds no bridge or firewall rule for the build.
image: image-base
	$(PODMAN) build $(BUILD_FLAGS) --build-arg BASE=$(IMAGE_BASE) -f Containerfile -t $(IMAGE) .

image-slim: image-setup
	$(PODMAN) build $(BUILD_FLAGS) -f Containerfile -t $(IMAGE) .

test-image: venv image
	CONTAINERS_CONF=$(CONTAINERS_CONF_FILE) NETLAB_IMAGE=$(IMAGE) $(PY) -m pytest \
	    --container-tier=on tests/container $(PYTEST_ARGS)

image-clean:
	-$(PODMAN) rmi --ignore $(IMAGE) $(IMAGE_BASE)
	-$(PODMAN) image prune --force
	-$(PODMAN) rmi --ignore $$($(PODMAN) images --quiet --filter reference=localhost/podman-pause)
