# The two commands a newcomer needs:
#   go run ./_example    run the example app on http://localhost:3000
#   make test            run the whole test suite (installs memcached and redis-server if it can)
#   make load            the load and fault runs; writes RELIABILITY.md's figures (a few minutes)

GO          ?= go
PKGS        := ./...
FUZZTIME    ?= 10s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Nested modules, each with its own go.mod; make test runs their tests too,
# with the race detector but in benchmarks/, whose peers race in their own
# code (scs's memstore cleanup goroutine: alexedwards/scs#228).
MODULES     := benchmarks stores/redisstore gincontrib _example loadtest
NORACE      := benchmarks
# Fuzz targets as package:target pairs.
FUZZ        := .:FuzzWellFormed .:FuzzParseToken .:FuzzCookieHeader ./stores/codec:FuzzDecode

.PHONY: test check fmt-check vet staticcheck tracked unit modules fuzz bench memcached redis redis-sentinel load e2e chromium

# In CI (CI=true) the test run also fuzzes each target for $(FUZZTIME).
test: memcached redis redis-sentinel check unit modules $(if $(filter true,$(CI)),fuzz)

memcached:
	@scripts/ensure-memcached.sh

redis:
	@scripts/ensure-redis.sh

redis-sentinel:
	@scripts/ensure-redis-sentinel.sh

check: fmt-check vet staticcheck tracked

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	@set -e; for m in $(MODULES); do echo "go vet ($$m)"; (cd $$m && $(GO) vet ./...); done

# staticcheck comes from the module proxy (go run fetches it when missing).
staticcheck:
	$(GO) run $(STATICCHECK) $(PKGS)
	@set -e; for m in $(MODULES); do echo "staticcheck ($$m)"; (cd $$m && $(GO) run $(STATICCHECK) ./...); done

# No binary over 1 MB may be tracked.
tracked:
	@scripts/check-tracked.sh

unit:
	$(GO) test -race -count=1 $(PKGS)

modules:
	@set -e; for m in $(MODULES); do \
		race=-race; case " $(NORACE) " in *" $$m "*) race=;; esac; \
		echo "go test $$race ($$m)"; (cd $$m && $(GO) test $$race -count=1 ./...); \
	done

fuzz:
	@set -e; for t in $(FUZZ); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# Side-by-side benchmarks with scs and gin-contrib/sessions (nested module);
# updates the README's results table.
bench: memcached
	cd benchmarks && README=../README.md ./run.sh

# Load and fault runs (nested module loadtest): the example app on the
# memory store, memcached and Redis under LOAD_CLIENTS clients, stores
# killed and hung, a Sentinel and a Cluster failover, the memory store's
# soak. Prints the figures, writes them to loadtest/results/last-run.md
# and into RELIABILITY.md, and fails when a pass criterion is missed.
# About 4-5 minutes with the defaults; LOAD_DURATION (each steady run),
# LOAD_FAULT_DURATION (each run with a fault), LOAD_OUTAGE, LOAD_SCENARIOS
# and the others of `go run ./loadtest -h` change it.
LOAD_CLIENTS  ?= 64
LOAD_DURATION ?= 30s
load: memcached redis redis-sentinel
	cd loadtest && LOAD_CLIENTS=$(LOAD_CLIENTS) LOAD_DURATION=$(LOAD_DURATION) \
		$(GO) run . -results results/last-run.md -reliability ../RELIABILITY.md

# Real-browser tests of the example app (nested module e2e, headless
# Chromium); not part of make test. Installs Chromium when it can.
e2e: memcached chromium
	cd e2e && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./... && $(GO) test -count=1 ./...

chromium:
	@scripts/ensure-chromium.sh
