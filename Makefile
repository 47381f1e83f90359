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

## test: install what the tests need (ClickHouse), then vet, format check and tests with the race detector
test: test-deps lint
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test-deps:
	@command -v clickhouse-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's clickhouse-server for the integration tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client; \
	  else \
	    echo "clickhouse-server is missing: run 'sudo apt-get install -y clickhouse-server clickhouse-client'"; exit 1; \
	  fi; }

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

## bench: run the benchmarks (see benchmarks/README.md)
bench: test-deps
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 5 ./benchmarks/... | tee benchmarks/results/latest.txt

clean:
	rm -rf $(BIN) .data
