# The README's test command is `make test`; .ci/run calls it.
GO ?= go
PKGS := ./...
FUZZTIME ?= 10s

.PHONY: test check unit fuzz bench build demo helm-test e2e

demo:
	$(GO) run ./cmd/consortium devnet

build:
	$(GO) build -o bin/consortium ./cmd/consortium

# The whole suite, as CI runs it: the compose e2e suite (Docker) last.
test: check unit helm-test fuzz e2e

# The Helm charts: lint, render with several values files, strict k8s types.
# A module of its own, so Helm and Kubernetes stay out of the main go.mod.
helm-test:
	cd deploy/helm && $(GO) test -count=1 ./...

# The compose consortium across real Docker networks (needs the Docker engine).
e2e:
	deploy/build-images.sh
	$(GO) test -tags e2e -count=1 -v -timeout 30m ./test/e2e/

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 40m $(PKGS)

# A short run of every fuzz target (a Go fuzz run takes one target at a time).
fuzz:
	@set -e; for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  dir=$$(dirname $$spec); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$spec | sed 's/func //'); do \
	    echo "fuzz $$dir $$f"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$dir || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout 30m ./internal/bench/
