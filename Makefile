# cistrack: the two commands a new machine needs are `make demo` and `make test`.
# Both install what is missing first (scripts/setup.sh: Debian packages, ONNX Runtime from
# the PyPI wheel into .cistrack/onnxruntime, a Python venv in .venv) and are idempotent.

SHELL := /bin/bash
PYTHON := .venv/bin/python
CARGO ?= cargo
DEMO_REGION ?= chr22:17,200,001-17,800,000
DEMO_OUT ?= demo-out

.PHONY: setup setup-training build data demo test test-rust test-python lint bench train export doctor clean
.PHONY: demo-score demo-igv browser browser-data test-browser test-training

setup:
	@scripts/setup.sh

setup-training:
	@scripts/setup.sh --training

build: setup
	$(CARGO) build --release

# Derived demo inputs (K562 candidate-level bigWigs for the hg38 build) from ../shared/data.
data: setup
	@$(PYTHON) scripts/prepare_demo_data.py

# Score a real hg38 locus with K562 signals and write bigBed/bigWig/BED files (no browser).
demo-score: build data
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

# The main command: the daemon on the demo build and the JBrowse 2 page, until Ctrl-C.
DEMO_PORT ?= 8765
DEMO_WEB_PORT ?= 8766
demo: build data browser
	@examples/jbrowse/demo.sh jbrowse $(DEMO_PORT) $(DEMO_WEB_PORT)

# The same with the igv.js page.
demo-igv: build data browser
	@examples/jbrowse/demo.sh igv $(DEMO_PORT) $(DEMO_WEB_PORT)

# What the browser pages need: the plugin bundle, the JBrowse page, GENCODE genes as BED12.
browser: setup browser-data
	cd plugin && npm run --silent build
	cd examples/jbrowse && npm run --silent build

browser-data: setup
	@$(PYTHON) examples/jbrowse/prepare_genes.py

# The plugin's unit tests, type check and lint, then the pages in headless Chromium against the
# real daemon (plugin/e2e; screenshots in plugin/e2e-artifacts/).
test-browser: build data browser
	cd plugin && npm run --silent lint && npm test
	cd plugin && npm run --silent test:e2e

# Every test: formatting, lints, Rust unit/integration/parity tests, Python tests, the training
# smoke tests (PyTorch: tiny data, a few steps, export, ONNX Runtime parity), the browser plugin
# and pages.
test: setup data lint test-rust test-python test-training test-browser

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --all-features -- -D warnings

test-rust:
	$(CARGO) test --all-features

test-python:
	$(PYTHON) -m pytest -q -m "not torch" models/training/tests

# The PyTorch half of the model pipeline's tests, then the smoke pipelines of both model designs
# (tiny data, a few steps, export with the ONNX Runtime-vs-PyTorch parity check that fails the
# export above tolerance) into models/training/runs/ (never into models/). About 3 minutes;
# installs PyTorch on first use.
test-training: setup-training
	$(PYTHON) -m pytest -q -m torch models/training/tests
	rm -rf models/training/runs/smoke-ci models/training/runs/link-smoke
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.train --config configs/smoke.json --run-dir runs/smoke-ci --threads 2
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.export --run runs/smoke-ci --out runs/smoke-ci/models --version 0.0.0-smoke
	$(MAKE) --no-print-directory link-data train-link eval-link export-link LINK_CONFIG=configs/link-smoke.json
	rm -rf models/training/runs/sources-smoke
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.train_sources --config configs/sources-smoke.json --threads 2
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.moe_compare --dense runs/sources-smoke --moe runs/sources-smoke --resamples 100 --out runs/sources-smoke/moe_compare.json
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.export --run runs/sources-smoke --out runs/sources-smoke/models --version 0.0.0-smoke --roles teacher student moe
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.quantize --model runs/sources-smoke/models/enhancer-student/0.0.0-smoke --run runs/sources-smoke

bench: build
	$(CARGO) bench --bench benches

doctor: build
	target/release/cistrack --config examples/hg38.toml doctor

# Model pipeline (PyTorch; several GB on first setup). See models/training/README.md.
train: setup-training
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.train --config configs/enhancer-0.1.0.json --run-dir runs/enhancer-0.1.0

export: setup-training
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.export --run runs/enhancer-0.1.0

# Enhancer models on every labelled source (real K562 candidates, iEnhancer, simulated), one command
# per step: datasets, the five models (teacher, distilled student, from-scratch student, low-coverage
# fine-tuned teacher, two-branch CNN; resumable), the held-out tables (runs/<name>/metrics.json,
# tables.md), export to models/enhancer-{teacher,student}/0.2.0. The teacher is warm-started from the
# simulated run, so `make train` must have run first.
ENHANCER_CONFIG ?= configs/enhancer-0.2.0.json
.PHONY: enhancer-data train-enhancer eval-enhancer export-enhancer
enhancer-data: setup-training
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.train_sources --config $(ENHANCER_CONFIG) --stage data
train-enhancer: setup-training
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.train_sources --config $(ENHANCER_CONFIG) --resume
eval-enhancer: setup-training
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.train_sources --config $(ENHANCER_CONFIG) --stage evaluate
export-enhancer: setup-training
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.export --run runs/enhancer-0.2.0 --version 0.2.0

# Enhancer-gene link model (EPInformer design) on real K562 data, one command per step:
# dataset, training (12 leave-chromosome-out folds, resumable), held-out evaluation tables
# (runs/<name>/eval/*.tsv, metrics.json), export to models/link-epinformer/. LINK_CONFIG=configs/link-smoke.json
# runs the whole chain in about a minute.
LINK_CONFIG ?= configs/link-0.2.0-aux3.json
LINK_VERSION ?= 0.2.0
.PHONY: link-data train-link eval-link export-link
link-data: setup
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.link_data --config $(LINK_CONFIG)

train-link: setup-training
	cd models/training && PYTHONPATH=src nice -n 10 ../../$(PYTHON) -m cistrack_training.link_train --config $(LINK_CONFIG) --resume

eval-link: setup
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.link_eval --config $(LINK_CONFIG)

export-link: setup-training
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.link_export --config $(LINK_CONFIG) --version $(LINK_VERSION)

# Supervised enhancer-gene (E2G) score: the runtime writes its own feature table for every gene
# of the K562 CRISPRi training benchmark (cistrack links --no-e2g, 2-Mb reach), then a
# leave-one-chromosome-out logistic regression is fitted, calibrated and exported to
# models/link-e2g/ (tables in models/training/runs/e2g-0.1.0/). About 3 minutes. The link
# model's outputs are left out of the model: link-epinformer 0.2.0 was trained on the same
# CRISPRi labels, which would leak into the E2G's cross-validation.
E2G_RUN ?= models/training/runs/e2g-0.1.0
CRISPRI ?= ../shared/data/hg38/k562/crispri/EPCrisprBenchmark_combined_data.training_K562.GRCh38.tsv.gz
UBIQUITOUS ?= ../shared/data/hg38/k562/abc_reference/UbiquitouslyExpressedGenes.txt
.PHONY: e2g-features train-e2g
e2g-features: build data
	@mkdir -p $(E2G_RUN)
	$(PYTHON) -c "import csv,gzip,sys; ids=sorted({r['measuredGeneEnsemblId'] for r in csv.DictReader(gzip.open(sys.argv[1],'rt'),delimiter='\t')}); open(sys.argv[2],'w').write('\n'.join(ids)+'\n')" $(CRISPRI) $(E2G_RUN)/genes.txt
	target/release/cistrack --config examples/hg38.toml links --no-e2g --reach 2000000 \
		--genes $(E2G_RUN)/genes.txt --ubiquitous-genes $(UBIQUITOUS) -o $(E2G_RUN)/features.tsv

train-e2g: e2g-features
	cd models/training && PYTHONPATH=src ../../$(PYTHON) -m cistrack_training.e2g_train \
		--features ../../$(E2G_RUN)/features.tsv --crispri ../../$(CRISPRI) --ubiquitous ../../$(UBIQUITOUS) \
		--exclude attention,attention_x_activity,attended,expression \
		--run-dir ../../$(E2G_RUN) --export ../link-e2g/0.1.0

clean:
	$(CARGO) clean
	rm -rf $(DEMO_OUT)
