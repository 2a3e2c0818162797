# robust-vision-lab — every target works on a fresh clone: `test` and `demo` build the venv first when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONUNBUFFERED := 1

.PHONY: help install wordnet test demo demo-calibration demo-mixing demo-vit demo-antispoof demo-anomaly demo-tgi-ad demo-topics demo-tvqvae-image demo-styleflow lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

install: $(STAMP) wordnet  ## create .venv from nothing and install the project with its dev tools (quick when done)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
WORDNET_INDEX := /usr/share/wordnet/index.noun

wordnet:  ## WordNet 3.0 from Debian's wordnet-base (topic-model preprocessing; read by NLTK, never downloaded at run time)
	@test -f $(WORDNET_INDEX) || $(SUDO) apt-get install -y -q wordnet-base >/dev/null \
	  || ($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q wordnet-base >/dev/null) \
	  || echo "WordNet not installed: topic-model configs need data.init_args.wordnet: false (or WORDNET_DIR)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP) wordnet lint  ## lint, then the whole test suite on CPU (tiny stand-in data, no network)
	$(PY) -m pytest -q

demo: $(STAMP)  ## train the four ForenSynths detectors on the stand-in (~10 min on 2 CPU cores), print the table
	cd $(CURDIR) && $(PY) scripts/demo_forensynths.py

demo-calibration: $(STAMP)  ## SCTL calibration on the long-tailed digits stand-in (~3.5 min on 2 CPU cores), tables into its README
	cd $(CURDIR) && $(PY) scripts/demo_calibration.py --readme

demo-mixing: $(STAMP)  ## baseline / Mixup / CutMix / DMixup / DCutMix on the digits stand-in, 3 seeds (~65 min)
	cd $(CURDIR) && $(PY) scripts/demo_mixing.py

demo-vit: $(STAMP)  ## plain ViT / ViT + attention links / advanced on 10 % of the digits stand-in, 3 seeds (~45 min)
	cd $(CURDIR) && $(PY) scripts/demo_vit_aal.py

demo-antispoof: $(STAMP)  ## mToFNet vs the supervised RGB-D baseline on the stand-in's unseen displays, 3 seeds (~26 min)
	cd $(CURDIR) && $(PY) scripts/demo_antispoof.py

demo-anomaly: $(STAMP)  ## PatchCore / Reverse Distillation, one-, few- and full-shot, on the MVTec-layout stand-in (~35 min)
	cd $(CURDIR) && $(PY) scripts/demo_anomaly.py

demo-tgi-ad: $(STAMP) wordnet  ## text-guided generated normals for the four anomaly baselines, one- and few-shot (~90 min)
	cd $(CURDIR) && $(PY) scripts/demo_tgi_ad.py

demo-topics: $(STAMP) wordnet  ## TVQ-VAE / ProdLDA / LDA on gensim's shipped corpora, K = 5 and 10, 3 seeds (~20 min)
	cd $(CURDIR) && $(PY) scripts/demo_topics.py

demo-tvqvae-image: $(STAMP)  ## image TVQ-VAE on the digits and LFW-face stand-ins: VQ-VAE, topics + PixelCNN, purity, grids (~60 min)
	cd $(CURDIR) && $(PY) scripts/demo_tvqvae_image.py
	cd $(CURDIR) && $(PY) scripts/demo_tvqvae_image.py --dataset celeba64 --vq_epochs 20 --topic_epochs 30

demo-styleflow: $(STAMP)  ## StyleGRU / content-only / content + style, leave one manipulation out, FF++ stand-in, 3 seeds (~30 min)
	cd $(CURDIR) && $(PY) scripts/demo_styleflow.py --seeds 1 2 3

lint: $(STAMP)  ## ruff: formatting (ruff format --check) and lint rules (ruff check)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

bench: $(STAMP)  ## Lightning overhead, input pipeline vs torchvision, peak memory -> benchmarks/results.md (~5 min)
	$(PY) -m benchmarks.run

clean:  ## remove runs and stand-in data (keeps .venv)
	rm -rf runs .standins
