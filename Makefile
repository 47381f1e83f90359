# fleetstream: the two commands of the README are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TOOLS := $(CURDIR)/.bin
PKGS := ./...

# Pinned code generators, installed with `go install` into .bin/.
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
GRPC_GATEWAY_VERSION := v2.33.0

.PHONY: run build test test-deps lint generate tools bench clean

## run: build and start the whole system (embedded Kafka, local ClickHouse, this machine's agent)
run: build
	$(BIN)/fleetstream dev $(ARGS)

build:
	$(GO) build -o $(BIN)/fleetstream ./cmd/fleetstream

## test: install what the tests need (ClickHouse, Java, Maven, Kafka's jars), vet, format check, then
## the tests with the race detector on kfake, then the Kafka-touching ones again on a real Kafka broker
test: test-deps lint
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(MAKE) --no-print-directory test-kafka

test-deps: moto
	@command -v clickhouse-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's clickhouse-server for the integration tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client; \
	  else \
	    echo "clickhouse-server is missing: run 'sudo apt-get install -y clickhouse-server clickhouse-client'"; exit 1; \
	  fi; }

# The real Apache Kafka broker (deploy/kafka): single-node KRaft on 127.0.0.1.
KAFKA := deploy/kafka/kafka.sh
# The integration lane's broker has its own data directory and ports, so a
# broker started with `make kafka-start` keeps running undisturbed.
TEST_KAFKA := KAFKA_DIR=$(CURDIR)/.data/kafka-test KAFKA_PORT=39192 $(KAFKA)
# Packages whose tests get their Kafka from kafkatest.Cluster: the ones that
# run again against the real broker (FLEETSTREAM_TEST_KAFKA).
KAFKA_TEST_PKGS = $$($(GO) list -f '{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}' $(PKGS) | \
	awk '/ github.com\/fleetstream\/fleetstream\/internal\/kafka\/kafkatest( |$$)/ {print $$1}')

.PHONY: test-kafka kafka-deps kafka-start kafka-stop kafka-status

## test-kafka: the integration lane alone: a fresh broker, the Kafka-touching tests against it, the broker stopped and removed
test-kafka: test-deps kafka-deps
	@set -e; $(TEST_KAFKA) clean; \
	  trap '$(TEST_KAFKA) clean' EXIT; \
	  addr=$$($(TEST_KAFKA) start); \
	  pkgs="$(KAFKA_TEST_PKGS)"; \
	  echo "integration lane on Apache Kafka at $$addr:" $$pkgs; \
	  FLEETSTREAM_TEST_KAFKA=$$addr $(GO) test -race -count=1 -timeout 15m $$pkgs

# Java 17+ and Maven run the broker; Maven Central serves its jars (cached in
# ~/.m2, copied once into .data/kafka-lib).
kafka-deps:
	@{ command -v mvn && command -v javac; } >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Java 17 and Maven for the Kafka broker"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven; \
	  else \
	    echo "Java or Maven is missing: run 'sudo apt-get install -y openjdk-17-jdk-headless maven'"; exit 1; \
	  fi; }
	@$(KAFKA) install

## kafka-start: start a local Apache Kafka broker on 127.0.0.1:39092 (data in .data/kafka-broker)
kafka-start: kafka-deps
	@$(KAFKA) start

## kafka-stop: stop the broker kafka-start started
kafka-stop:
	@$(KAFKA) stop

kafka-status:
	@$(KAFKA) status

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^schemas/gen/')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

tools:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION) \
	  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)

## generate: regenerate protobuf, gRPC, gateway and OpenAPI code from schemas/proto
generate: tools
	cd schemas && PATH=$(TOOLS):$$PATH buf lint proto && PATH=$(TOOLS):$$PATH buf generate

## bench: benchmark the pipeline with a simulated fleet on a real Kafka broker and ClickHouse, then the
## micro-benchmarks; writes benchmarks/results/ (see benchmarks/README.md). BENCH_ARGS="--runs 5" etc.
bench: build test-deps kafka-deps
	$(BIN)/fleetstream bench --out benchmarks/results $(BENCH_ARGS)
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem ./benchmarks/... | tee benchmarks/results/micro.txt

clean:
	rm -rf $(BIN) .data

.PHONY: deploy-manifests image

## deploy-manifests: re-render deploy/kubernetes/fleetstream.yaml from the Helm chart (go test ./deploy checks it is current)
deploy-manifests:
	$(GO) test -count=1 -run '^TestRenderedManifestsAreCurrent$$' ./deploy -update

## image: build the container image fleetstream:dev (needs Docker; see deploy/README.md)
image:
	docker build -f deploy/Dockerfile -t fleetstream:dev .

# moto, the AWS API emulator the collector tests run against (connectors/collectors/aws,
# benchmarks/collectors), from PyPI in its own virtualenv under .bin/; mototest finds it there.
MOTO_VERSION := 5.2.5
MOTO_STAMP := $(TOOLS)/moto/.installed-$(MOTO_VERSION)

.PHONY: moto
## moto: install moto[server] (pinned) into .bin/moto
moto: $(MOTO_STAMP)
$(MOTO_STAMP):
	@python3 -m venv $(TOOLS)/moto || { echo "python3 -m venv failed: install Python 3 with venv (Debian: apt-get install -y python3-venv)"; exit 1; }
	$(TOOLS)/moto/bin/pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)'
	@touch $@

# Under make test a missing moto fails the AWS collector tests instead of skipping them.
test: export FLEETSTREAM_REQUIRE_MOTO = 1
