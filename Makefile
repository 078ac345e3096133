# lxcbox: `make demo` and `make test` do everything on a fresh Debian machine (as root).
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := $(CURDIR)/.venv
VPY := $(VENV)/bin/python
BIN ?= /usr/local/bin
# what lxcbox needs to run; the peers it is tested and measured against come with `make test` and `make bench`
APT_PACKAGES := lxc lxc-dev pkg-config busybox-static nftables iproute2 python3-venv python3-dev gcc libc6-dev \
                xz-utils mmdebstrap
TEST_PACKAGES := podman runc skopeo umoci docker-registry apache2-utils openssl docker.io docker-compose
BENCH_PACKAGES := hyperfine podman runc skopeo docker-registry docker.io

.PHONY: install deps test-deps venv launcher test unit integration demo bench clean criu

install: deps venv launcher

# Debian packages, only those missing (so a second `make install` costs nothing)
APT_INSTALL = missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

deps:
	@$(call APT_INSTALL,$(APT_PACKAGES))
	@# Debian ships the stdlib without some bytecode; compile it once so start-up is not spent compiling
	@$(PYTHON) -m compileall -q -j0 /usr/lib/python3*/ >/dev/null 2>&1 || true

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

# The command on PATH runs on the venv's interpreter with -IS: never through a pyenv shim,
# and without `site` (see docs/ARCHITECTURE.md, "The run hot path").
launcher: venv lxcbox/helpers/setuser lxcbox/helpers/logpump
	@sed -e '1s|.*|#!$(VPY) -IS|' -e 's|@REPO@|$(CURDIR)|' bin/lxcbox > $(BIN)/lxcbox.tmp
	@chmod 755 $(BIN)/lxcbox.tmp && mv $(BIN)/lxcbox.tmp $(BIN)/lxcbox
	@$(VPY) -m compileall -q lxcbox >/dev/null
	@# the Engine API socket's group, as Docker's `docker` group (system service, 0660 root:lxcbox)
	@getent group lxcbox >/dev/null || groupadd --system lxcbox
	@echo "lxcbox installed: $(BIN)/lxcbox -> $(VPY)"

# `run -u` switches user through this static helper (see lxcbox/helpers/setuser.c)
lxcbox/helpers/setuser: lxcbox/helpers/setuser.c
	gcc -static -O2 -Wall -o $@ $<

# a running container's monitor becomes this static pump (lxcbox/containers/handoff.py):
# static, because a statically linked process keeps fewer private pages (91 vs 143 KiB PSS)
lxcbox/helpers/logpump: lxcbox/helpers/logpump.c
	gcc -static -O2 -Wall -Wextra -o $@.tmp $< && mv $@.tmp $@

test-deps:
	@$(call APT_INSTALL,$(TEST_PACKAGES))

# CRIU 4.2.1 for checkpoint and restore, built from Debian's source tarball (see bin/build-criu);
# cached under /var/cache/lxcbox/criu, so a second run only installs
criu:
	@bash bin/build-criu

test: install test-deps criu
	LXCBOX_REQUIRE_INTEGRATION=1 $(VPY) -m pytest -q tests

unit: venv
	$(VPY) -m pytest -q tests/unit

integration: install test-deps criu
	LXCBOX_REQUIRE_INTEGRATION=1 $(VPY) -m pytest -q tests/integration

demo: install
	@bash examples/demo.sh

bench: install criu
	@$(call APT_INSTALL,$(BENCH_PACKAGES))
	$(VPY) bench/bench.py

clean:
	rm -rf $(VENV) build *.egg-info
