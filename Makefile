# Two entry points on a fresh machine: `make demo` (install + main job) and `make test` (install + suite).
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: install demo test figures

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/freqlens spectrum --model probe_cnn --ckpt freqlens/data/checkpoints/probe_cnn_hf.safetensors \
		--images freqlens/data/samples --out $(DEMO_OUT) --overwrite

# pytest's exit code 5 (no tests collected) counts as a failure.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --durations=15; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc
