# paysim — every node/npm call goes through scripts/with-node.sh
# (ensures Node >= 22.19 and an up-to-date node_modules).
SHELL := bash
.DEFAULT_GOAL := help
WITH_NODE := scripts/with-node.sh
IMAGE ?= paysim:local
# `make token USER=…`: USER is also the login name in every shell's environment, so only a USER
# given on make's command line counts; otherwise the token is for user_test_001.
TOKEN_USER = $(if $(filter command line,$(origin USER)),$(USER),user_test_001)
TTL ?= 1h

.PHONY: build run test test-unit test-integration test-redis test-coverage lint openapi postman fuzz \
	bench bench-cluster bench-faults bench-webhooks bench-bookings bench-v2 screenshots bench-fluxpay bench-waiting-room bench-report bench-console docker-build docker-run docker-verify install token help

help: ## List targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-18s %s\n", $$1, $$2}'

install: ## Ensure Node 24 and run npm ci if node_modules is stale
	$(WITH_NODE) true

build: ## Compile src/ to dist/
	$(WITH_NODE) npm run build

run: build ## Build, then start the server (dist/server.js), reading .env when it exists
	$(WITH_NODE) node --env-file-if-exists=.env dist/server.js

token: ## Print a bearer token for /api/v1/payments/process: make -s token USER=user_test_001 TTL=1h
	@WITH_NODE_QUIET=1 $(WITH_NODE) node scripts/mint-token.ts '$(TOKEN_USER)' '$(TTL)'

test: ## Run all tests: the whole suite on memory, then the in-process integration suites on Redis (test-redis)
	$(WITH_NODE) npx vitest run
	@if command -v redis-server >/dev/null 2>&1 || [ -n "$$CI" ]; then $(MAKE) --no-print-directory test-redis; \
	else echo "make test: the Redis run (test-redis) skipped: redis-server is not on PATH (Debian package redis-server; under CI=true it fails instead)"; fi

test-unit: ## Run unit tests
	$(WITH_NODE) npx vitest run test/unit

test-integration: ## Run integration tests
	$(WITH_NODE) npx vitest run test/integration

# Every integration test file that builds the app in the test process (buildTestApp and the
# fixtures on it), with every test app on STORE=redis (a redis-server started for the run by
# test/helpers/redis-global-setup.ts, a key prefix per app): the same suites on both back ends.
# Not listed: the files that run the service as a child process or an image (process,
# process-start, dist-start, dockerfile, cluster, connections, env-file, mint-token, swagger-ui,
# newman, webhooks-shutdown: their store is what they set), redis-replicas and redis-replicas-load
# (on Redis already), namespaces-redis (on Redis already), and event-logs (its loggers need no store).
REDIS_TEST_FILES := $(addprefix test/integration/,$(addsuffix .test.ts,sim-api bookings-api v2-api payment-service \
	fluxpay-api fluxpay-saga fluxpay-subscriptions fluxpay-waiting-room webhooks-api webhooks-delivery faults-rules \
	app-release bookings-listen bookings-race console console-fluxpay console-rules console-sessions deploy-files dialect-errors \
	edge-cases faults-disabled faults-requests faults-webhooks fluxpay-outbox fluxpay-property fluxpay-race \
	fluxpay-rate-limit listen metrics-promtool metrics-usage mix openapi openapi-examples report time-scale \
	v2-callbacks v2-race validation-messages webhooks-load webhooks-signing namespaces coalesced-writes idempotency-late-settle drain-report)) \
	test/fuzz/api.fuzz.test.ts

test-redis: ## Run every in-process integration test and the fuzzer on the Redis back end (needs redis-server on PATH)
	PAYSIM_TEST_STORE=redis $(WITH_NODE) npx vitest run $(REDIS_TEST_FILES)

screenshots: ## Retake the console screenshots in docs/ (the browser test, in Chromium)
	CONSOLE_SCREENSHOTS=docs $(WITH_NODE) npx vitest run test/browser/console.test.ts

test-coverage: ## Run all tests with v8 coverage
	$(WITH_NODE) npx vitest run --coverage

lint: ## Type-check, eslint and the OpenAPI lint (Spectral)
	$(WITH_NODE) npm run lint

openapi: ## Generate the OpenAPI document (openapi/payment-sim.yaml)
	$(WITH_NODE) npm run openapi

postman: ## Generate the Postman collection (postman/paysim.postman_collection.json) from the OpenAPI document
	$(WITH_NODE) node scripts/postman.ts

fuzz: ## Fuzz every route: FUZZ_REQUESTS (default 200000), FUZZ_SEED, FUZZ_PATH to replay a failure, FUZZ_STORE=redis on a private redis-server
	$(WITH_NODE) node scripts/fuzz.ts

bench: ## Benchmark payment intents
	$(WITH_NODE) node scripts/bench.ts

bench-faults: ## Benchmark what fault injection costs make bench: FAULTS_ENABLED=false vs 0 rules vs 100 non-matching rules, interleaved rounds
	$(WITH_NODE) node scripts/bench-faults.ts

bench-cluster: ## Benchmark intents on memory, Redis and Redis with CLUSTER_WORKERS=2, and Redis commands per intent (needs redis-server)
	$(WITH_NODE) node scripts/bench-cluster.ts

bench-webhooks: ## Benchmark webhook delivery
	$(WITH_NODE) node scripts/bench-webhooks.ts

bench-bookings: ## Benchmark bookings
	$(WITH_NODE) node scripts/bench-bookings.ts

bench-report: ## Benchmark the run report (GET /v1/sim/report) over 100,000 intents: time, heap peak, event-loop delay
	$(WITH_NODE) node --expose-gc scripts/bench-report.ts

bench-v2: ## Benchmark the Payment Server v3 API (/api/v2): payments/s with their callbacks
	$(WITH_NODE) node scripts/bench-v2.ts

bench-fluxpay: ## Benchmark the FluxPay API: complete flows/s (order → payment → confirm → usage requested → completed), then reconcile
	$(WITH_NODE) node scripts/bench-fluxpay.ts

bench-waiting-room: ## Benchmark FluxPay waiting rooms: enters/s, ticket polls/s, admission-rate error over BENCH_ADMISSION_SECONDS (default 30)
	$(WITH_NODE) node scripts/bench-waiting-room.ts

bench-console: ## Benchmark the console's live updates in headless Chromium: ms from a change (created, decided) to the page, p50/p95/p99/max against the 1 s bound (BENCH_CHANGES, default 50)
	$(WITH_NODE) node scripts/bench-console.ts

docker-build: ## Build the Docker image
	docker build -t $(IMAGE) .

docker-run: ## Run the Docker image on port 8080 (stop grace above the 10 s drain)
	docker run --rm -p 8080:8080 --stop-timeout 15 $(IMAGE)

docker-verify: ## Build the image with buildah on a locally made base (no Docker engine or registry), run it and check it (root)
	bash scripts/docker-verify.sh
