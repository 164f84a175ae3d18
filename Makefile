# paysim — every node/npm call goes through scripts/with-node.sh
# (ensures Node >= 22.19 and an up-to-date node_modules).
SHELL := bash
.DEFAULT_GOAL := help
WITH_NODE := scripts/with-node.sh
IMAGE ?= paysim:local

.PHONY: build run test test-unit test-integration test-coverage lint openapi \
	bench bench-webhooks bench-bookings docker-build docker-run install help

help: ## List targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-18s %s\n", $$1, $$2}'

install: ## Ensure Node 24 and run npm ci if node_modules is stale
	$(WITH_NODE) true

build: ## Compile src/ to dist/
	$(WITH_NODE) npm run build

run: build ## Build, then start the server (dist/server.js)
	$(WITH_NODE) node dist/server.js

test: ## Run all tests
	$(WITH_NODE) npx vitest run

test-unit: ## Run unit tests
	$(WITH_NODE) npx vitest run test/unit

test-integration: ## Run integration tests
	$(WITH_NODE) npx vitest run test/integration

test-coverage: ## Run all tests with v8 coverage
	$(WITH_NODE) npx vitest run --coverage

lint: ## Type-check and eslint
	$(WITH_NODE) npm run lint

openapi: ## Generate the OpenAPI document
	$(WITH_NODE) npm run openapi

bench: ## Benchmark payment intents
	$(WITH_NODE) node scripts/bench.ts

bench-webhooks: ## Benchmark webhook delivery
	$(WITH_NODE) node scripts/bench-webhooks.ts

bench-bookings: ## Benchmark bookings
	$(WITH_NODE) node scripts/bench-bookings.ts

docker-build: ## Build the Docker image
	docker build -t $(IMAGE) .

docker-run: ## Run the Docker image on port 8080
	docker run --rm -p 8080:8080 $(IMAGE)
