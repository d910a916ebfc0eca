# The two Quick start commands are `make demo` and `make test`; both run the
# one setup script first and are safe to re-run.
SHELL := /bin/bash
STACK := node packages/stack/dist/cli.js
ENV := source scripts/env.sh &&

.PHONY: setup test demo up down status lint typecheck bench clean

setup:
	@bash scripts/setup.sh

test: setup
	@bash scripts/test.sh

demo: setup
	@bash scripts/demo.sh

up: setup
	@$(ENV) $(STACK) up

down:
	@$(ENV) if [ -f packages/stack/dist/cli.js ]; then $(STACK) down; else echo "nothing to stop"; fi

status:
	@$(ENV) $(STACK) status

lint: setup
	@$(ENV) pnpm exec turbo run lint typecheck --output-logs=errors-only

bench: setup
	@$(ENV) pnpm bench

clean: down
	rm -rf .turbo packages/*/dist services/*/dist
