# Quick start: `make demo` and `make test` (both install what they need).

WASM_TARGET := wasm32-wasip2
EXAMPLE_PLUGINS := -p rootfs-tarball
BUILTIN_PLUGINS := -p iso-plugin -p raw-plugin -p uki-plugin
TEST_PLUGINS := -p test-plugin-hostile -p test-plugin-wrong-api -p test-plugin-no-exports \
	-p test-plugin-impostor -p test-plugin-escape -p test-plugin-cache-escape \
	-p test-plugin-squatter -p test-plugin-bad-version -p test-plugin-slow-info -p test-plugin-legacy -p test-plugin-netboot -p test-plugin-signer
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: setup plugins build demo test lint bench

setup:
	bash scripts/setup.sh

plugins: setup
	$(CARGO) build --release --target $(WASM_TARGET) $(EXAMPLE_PLUGINS) $(TEST_PLUGINS)

build: setup
	$(CARGO) build -p auroraboot

demo: plugins build
	bash scripts/demo.sh

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p auroraboot-sdk $(EXAMPLE_PLUGINS) --features auroraboot-sdk/testing --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p auroraboot-sdk $(BUILTIN_PLUGINS) $(EXAMPLE_PLUGINS) $(TEST_PLUGINS) -- -D warnings
	$(CARGO) clippy --target x86_64-unknown-uefi -p auroraboot-enroller -- -D warnings

test: plugins lint
	$(CARGO) test
	$(CARGO) test -p auroraboot-sdk $(EXAMPLE_PLUGINS) --features auroraboot-sdk/testing

bench: plugins
	$(CARGO) build --release -p auroraboot
	bash benches/bench.sh
	bash benches/pull.sh
	bash benches/netboot.sh
	bash benches/disk.sh
	bash benches/uki.sh
