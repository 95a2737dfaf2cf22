# dgx_spark.cluster: the two commands are `make test` and `make demo`.
SHELL := /bin/bash
VENV := .venv/bin
NODE ?= spark-2959
SCENARIO ?= healthy

.PHONY: help setup test demo unit sanity sanity-matrix units lint changelog lab-up lab-down lab-status lab-engine lab-model lab-trtllm lab-train lab-ee lab-shell lab-scenario ee

help:
	@echo "make test           every gate: unit, sanity (2.19 + 2.21), units, lint, build, molecule, lab e2e"
	@echo "make demo           set up, bring the lab up, launch a model, print the endpoint and a completion"
	@echo "make setup          virtualenvs, apt packages, ansible-test bootstrap (idempotent)"
	@echo "make unit | sanity-matrix | units | lint"
	@echo "make ee             the execution environment (execution-environment.yml; EE_* settings: scripts/build_ee.sh)"
	@echo "make lab-up | lab-down | lab-status | lab-engine | lab-model | lab-trtllm | lab-train | lab-ee | lab-shell NODE=... | lab-scenario NODE=... SCENARIO=..."

setup:
	scripts/setup.sh all

test:
	scripts/test.sh

demo:
	scripts/demo.sh

unit: setup
	$(VENV)/pytest -q tests/unit

sanity-matrix: setup
	scripts/ansible_test.sh .venv 3.11 sanity
	scripts/ansible_test.sh .venv-2.21 3.12 sanity

sanity: sanity-matrix

units: setup
	scripts/ansible_test.sh .venv 3.11 units

lint: setup
	$(VENV)/ansible-lint --profile production --strict

changelog: setup
	$(VENV)/antsibull-changelog release

ee: setup
	scripts/build_ee.sh

lab-up:
	lab/lab.sh up

lab-down:
	lab/lab.sh down

lab-status:
	lab/lab.sh status

lab-engine:
	lab/lab.sh engine

lab-model:
	lab/lab.sh model

lab-trtllm:
	lab/lab.sh trtllm

lab-train:
	lab/lab.sh train

lab-ee: setup
	lab/lab.sh ee

lab-shell:
	lab/lab.sh shell $(NODE)

lab-scenario:
	lab/lab.sh scenario $(NODE) $(SCENARIO)
