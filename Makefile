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

# The report test renders HTML in Debian's Chromium, installed here when missing (CI runs as root).
# pytest's exit code 5 (no tests collected) counts as a failure.
test: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -n 2 --durations=15; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Paper figures of the shipped probe checkpoints (PDF + SVG + PNG) into docs/figures; tiny settings, CPU minutes.
FIGURES_OUT ?= docs/figures
FIGURE_LIMIT ?= 8
CKPTS := freqlens/data/checkpoints
PROBES := --model probe_cnn probe_cnn probe_vit probe_vit \
	--ckpt $(CKPTS)/probe_cnn_hf.safetensors $(CKPTS)/probe_cnn_lf.safetensors \
	$(CKPTS)/probe_vit_hf.safetensors $(CKPTS)/probe_vit_lf.safetensors \
	--limit $(FIGURE_LIMIT) --out $(FIGURES_OUT)

figures: $(STAMP)
	$(VENV)/bin/python scripts/figures/delta_log_amplitude.py $(PROBES)
	$(VENV)/bin/python scripts/figures/erf_grid.py $(PROBES)
	$(VENV)/bin/python scripts/figures/interaction_curves.py $(PROBES) --limit 2 --grid 8 --pairs 8 --contexts 8
	$(VENV)/bin/python scripts/figures/gradcam_grid.py $(PROBES) --limit 3
	$(VENV)/bin/python scripts/figures/frequency_response.py $(PROBES) --limit 4
