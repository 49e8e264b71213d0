# ONFH grading portal — research and teaching software, not a medical device.
#   make run    install everything, build the viewer, migrate, load demo data, start portal + worker
#   make test   install everything, then run the whole test suite (engine, portal, API, browser)
#   make check  lint and type checks
#   make bench  the benchmark commands whose results go in docs/benchmarks.md
#               (bench_load: locust against PostgreSQL + Redis + 2 workers, and embedded)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FRONTEND := viewer/frontend
PORT ?= 8000

.PHONY: install install-test-peers install-bench install-python install-system install-frontend run test test-python test-s3 test-frontend check bench clean

install: install-python install-system install-frontend

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first, pinned to the CPU wheel (an unpinned torch pulls a multi-GB CUDA build)
$(VENV)/.installed: $(PY) pyproject.toml requirements.lock
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c requirements.lock -e '.[dev]'
	touch $@

install-python: $(VENV)/.installed

# Debian packages the tests drive as real peers: Chromium for the browser tests,
# dcmtk and dicom3tools for DICOM networking and validation, node for the test OpenID
# Connect provider, nginx for the reverse-proxy recipe, Orthanc with its DICOMweb plugin
# as the PACS, openssl for the receiver's TLS certificates.
install-system:
	@missing=""; \
	for pair in chromium:chromium storescu:dcmtk dciodvfy:dicom3tools node:nodejs npm:npm nginx:nginx-light \
	  openssl:openssl /usr/sbin/Orthanc:orthanc /usr/share/orthanc/plugins/libOrthancDicomWeb.so:orthanc-dicomweb; do \
	  [ -e "$${pair%%:*}" ] || command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi; fi

$(FRONTEND)/node_modules/.package-lock.json: $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error

static/viewer/.vite/manifest.json: $(FRONTEND)/node_modules/.package-lock.json $(shell find $(FRONTEND)/src -type f 2>/dev/null) $(FRONTEND)/vite.config.ts
	cd $(FRONTEND) && npm run build

install-frontend: static/viewer/.vite/manifest.json

# The OpenID Connect provider the sign-in tests start (panva's oidc-provider, run by node).
OIDC_PEER := tests/peers/oidc_provider
$(OIDC_PEER)/node_modules/.package-lock.json: $(OIDC_PEER)/package-lock.json
	cd $(OIDC_PEER) && npm ci --no-audit --no-fund --loglevel=error

install-test-peers: install-system $(OIDC_PEER)/node_modules/.package-lock.json

run: install
	PORT=$(PORT) $(PY) -m onfh_site.launch

test: install install-test-peers test-frontend test-python test-s3

test-python:
	$(PY) -m pytest

# The tests that store and read files, again with ONFH_STORAGE=s3: tests/conftest.py then
# starts moto's stand-alone S3 server (moto[server], a dev dependency) on a free port.
S3_TESTS := tests/grading_tests/apis/test_uploads_api.py tests/grading_tests/apis/test_labelmaps_api.py \
	tests/grading_tests/test_tasks.py tests/grading_tests/exports \
	tests/grading_tests/interop/test_dicomweb.py tests/grading_tests/interop/test_dicomweb_ps318.py
test-s3:
	ONFH_STORAGE=s3 $(PY) -m pytest $(S3_TESTS)

test-frontend: $(FRONTEND)/node_modules/.package-lock.json
	cd $(FRONTEND) && npm test

check: install-python
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy grading/engine grading/dicom
	cd $(FRONTEND) && npx tsc --noEmit

# Orthanc (and its DICOMweb plugin) is the reference the ingest benchmarks run beside.
install-bench:
	@command -v Orthanc >/dev/null 2>&1 && [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb >/dev/null; \
	  else echo "the ingest benchmarks need: sudo apt-get install orthanc orthanc-dicomweb"; exit 1; fi; }

bench: install install-bench
	$(VENV)/bin/onfh benchmark --speed
	$(PY) manage.py bench_portal
	$(PY) manage.py bench_interop
	$(PY) manage.py bench_load

clean:
	rm -rf $(VENV) $(FRONTEND)/node_modules static/viewer var
