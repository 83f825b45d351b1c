# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test test-pg lint openapi token migrate bench soak

# The maintenance database the PostgreSQL pass creates its per-test databases from.
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test
ROLE ?= admin

## Serve on 127.0.0.1:8080 in development mode (embedded SQLite under ./data/);
## prints the Swagger UI address and an admin token.
run:
	APP_ENV=development cargo run --bin infusion-api -- serve

## The whole suite on SQLite, then again on PostgreSQL when TEST_DATABASE_URL is set
## (installs pdftotext, which reads the superbill PDF, if missing).
test:
	@bash .ci/pdftotext
	@echo "== test suite on SQLite"
	env -u TEST_DATABASE_URL cargo test
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== test suite on PostgreSQL"; \
		cargo test; \
	fi

## The suite on the local PostgreSQL server.
test-pg:
	@bash .ci/pdftotext
	@echo "== test suite on PostgreSQL"
	TEST_DATABASE_URL=$(PG_TEST_URL) cargo test

## Formatting and clippy, warnings denied.
lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

## schemathesis against the committed contract, as CI runs it (FUZZ_SEED=,
## FUZZ_EXAMPLES= to explore further).
.PHONY: fuzz
fuzz:
	bash .ci/fuzz

## CORS in headless Chromium: a page on one origin calls the API on another with a
## bearer token; a page on an origin not allowed must fail (installs chromium if missing).
.PHONY: browser-cors
browser-cors:
	bash .ci/browser-cors

## SMART Backend Services checked with PyJWT: two backend clients (RS384, ES384)
## get tokens with examples/ehr_client.py, verified against the server's JWKS.
.PHONY: smart-check
smart-check:
	bash .ci/smart-check

.PHONY: webhook-check
webhook-check:
	bash .ci/webhook-check

## The FHIR facade on the demo clinic, validated by fhir.resources (PyPI, R4B)
## and the FHIR R4 JSON schema (npm), and searched and paged by fhirpy.
.PHONY: fhir-check
fhir-check:
	bash .ci/fhir-check

## reference/icd10cm.csv, the clinic's ICD-10-CM codes, held to simple-icd-10-cm.
.PHONY: icd10-check
icd10-check:
	bash .ci/icd10-check

## schemathesis as a stranger runs it: `--checks all`, none of the project's
## configuration, hooks or seeded records. Reports the rules the contract cannot
## state (docs/API.md); not part of CI.
.PHONY: fuzz-bare
fuzz-bare:
	bash .ci/fuzz --bare

## Redocly's recommended rules and Spectral's spectral:oas over the committed
## contract, as CI runs them (any error fails).
.PHONY: contract-lint
contract-lint:
	bash .ci/contract-lint

## Regenerate the committed contract from the code.
openapi:
	cargo run -q --bin infusion-api -- openapi > openapi/openapi.json.tmp
	mv openapi/openapi.json.tmp openapi/openapi.json

## Print a token: make token ROLE=scheduler [SUB=<patient id>] (development secret
## unless JWT_SECRET is set).
token:
	@APP_ENV=development cargo run -q --bin infusion-api -- token --role $(ROLE) $(if $(SUB),--sub $(SUB))

## Apply migrations to DATABASE_URL (default: the embedded SQLite file).
migrate:
	cargo run -q --bin infusion-api -- migrate

## Throughput and latency on a seeded clinic, each scenario in interleaved rounds with
## pgbench running its SQL on the same PostgreSQL server (median of 3), then on SQLite;
## writes docs/BENCHMARKS.md (not part of `make test`). BENCH_QUICK=1: one round.
bench:
	python3 bench/bench.py

## Two API processes on one PostgreSQL database under concurrent bookings at scarce
## capacity, then one killed with SIGKILL; checks no double booking and no partial
## course (not part of `make test`).
soak:
	python3 bench/soak.py
