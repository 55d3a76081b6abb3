# The README's test command is `make test`; .ci/run calls it.
GO ?= go
PKGS := ./...
# A count, not a duration: with a duration Go 1.26's fuzz coordinator can
# report "context deadline exceeded" at the deadline without any failing
# input (golang/go#75804, fixed in Go 1.27; it failed a CI run here). 30,000
# executions take 0.5-15 s per target on this machine.
FUZZTIME ?= 30000x

.PHONY: test check unit ha fuzz bench bench-real build demo helm-test promtool-test e2e

demo:
	$(GO) run ./cmd/consortium devnet

build:
	$(GO) build -o bin/consortium ./cmd/consortium

# The whole suite, as CI runs it; the compose e2e suite (make e2e) needs the
# Docker engine and runs last, on cores the other suites have left idle.
test: check unit ha helm-test fuzz promtool-test e2e

# The Helm charts: lint, render with several values files, strict k8s types.
# A module of its own, so Helm and Kubernetes stay out of the main go.mod.
helm-test:
	cd deploy/helm && $(GO) test -count=1 ./...

# The alert rules (deploy/prometheus): promtool check rules, and the rule
# unit tests (promtool test rules); promtool is Debian's prometheus package.
promtool-test:
	deploy/prometheus/test.sh

# The BFT compose consortium across real Docker networks (needs the Docker
# engine): 12-30 minutes by the load. E2E_CLIQUE=1 adds the legacy Clique suite
# (about 6 more); E2E_BFT=0 leaves the BFT one out.
e2e:
	deploy/build-images.sh
	$(GO) test -tags e2e -count=1 -v -timeout 45m ./test/e2e/

# gofmt, vet, and the layering guard: the clients (agent, registrarclient,
# bootnode) never link the server (registry, httpapi), and internal/api, the
# wire contract they share, imports nothing of the repo.
check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -run '^TestClientsImportNoServer$$|^TestAPIImportsNothingOfTheRepo$$' ./internal/api/

# Everything but the HA suite, under the race detector.
unit:
	$(GO) test -race -count=1 -timeout 40m $$($(GO) list $(PKGS) | grep -v /internal/hatest)

# The HA suite (internal/hatest) on its own: three registrar processes, three
# etcd processes and 1,000 simulated agents, whose timings (a watcher resumes
# within 2 s) should not share the two cores with the geth suites. The race
# detector is left off: it would only slow the load generator.
ha:
	$(GO) test -count=1 -timeout 10m ./internal/hatest/

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

# The registrar benchmark on the real binary (issue 19): `consortium
# registrar` in its own process with its defaults, the load generator in this
# one; REAL_BENCH_RUNS runs (default 3). Heavy: it takes the shared lock.
bench-real:
	REAL_BENCH=1 flock /tmp/consortium-heavy.lock $(GO) test -count=1 -run '^TestRealBinary$$' -v -timeout 60m ./internal/bench/
