# cistrack: the two commands a new machine needs are `make demo` and `make test`.
# Both install what is missing first (scripts/setup.sh: Debian packages, ONNX Runtime from
# the PyPI wheel into .cistrack/onnxruntime, a Python venv in .venv) and are idempotent.

SHELL := /bin/bash
PYTHON := .venv/bin/python
CARGO ?= cargo
DEMO_REGION ?= chr22:17,200,001-17,800,000
DEMO_OUT ?= demo-out

.PHONY: setup setup-training build data demo test test-rust test-python lint bench train export doctor clean

setup:
	@scripts/setup.sh

setup-training:
	@scripts/setup.sh --training

build: setup
	$(CARGO) build --release

# Derived demo inputs (K562 candidate-level bigWigs for the hg38 build) from ../shared/data.
data: setup
	@$(PYTHON) scripts/prepare_demo_data.py

# The main job on bundled data: score a real hg38 locus with K562 signals.
demo: build data
	@mkdir -p $(DEMO_OUT)
	target/release/cistrack --config examples/hg38.toml doctor
	target/release/cistrack --config examples/hg38.toml score --region $(DEMO_REGION) \
		-o $(DEMO_OUT)/enhancers.bb -o $(DEMO_OUT)/enhancers.bed \
		--windows $(DEMO_OUT)/scores.bw --windows $(DEMO_OUT)/scores.bedGraph
	@echo
	@echo "Called enhancers ($(DEMO_REGION), hg38, K562):"
	@grep -v '^#' $(DEMO_OUT)/enhancers.bed | head -n 15 | cut -f1-9 | column -t
	@echo
	@echo "Wrote $(DEMO_OUT)/enhancers.bb (bigBed), $(DEMO_OUT)/enhancers.bed, $(DEMO_OUT)/scores.bw (bigWig), $(DEMO_OUT)/scores.bedGraph"

# Every test: formatting, lints, Rust unit/integration/parity tests, Python tests.
test: setup data lint test-rust test-python

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --all-features -- -D warnings

test-rust:
	$(CARGO) test --all-features

test-python:
	$(PYTHON) -m pytest -q -m "not torch" models/training/tests

bench: build
	$(CARGO) bench --bench benches

doctor: build
	target/release/cistrack --config examples/hg38.toml doctor

# Model pipeline (PyTorch; several GB on first setup). See models/training/README.md.
train: setup-training
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.train --config configs/enhancer-0.1.0.json --run-dir runs/enhancer-0.1.0

export: setup-training
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.export --run runs/enhancer-0.1.0

clean:
	$(CARGO) clean
	rm -rf $(DEMO_OUT)
