#!/usr/bin/env bash
# make test's pytest run, in the two phases of tests/conftest.py: every test not marked `serial` under
# pytest-xdist with WORKERS workers, then the `serial` ones alone on the machine (they observe timing).
# Both phases always run; the last line adds up both phases' counts.
#
#   scripts/test-suite.sh PYTHON WORKERS [pytest arguments, e.g. make test's PYTEST_ARGS]
#
# Exit status: 0 when both phases passed, or one passed and the other had no test to run (the
# arguments picked tests of one phase only: pytest's 5); otherwise the first phase's failing status.
set -u
python=$1
workers=$2
shift 2
counts=$(mktemp)
trap 'rm -f "$counts"' EXIT

HSMNODE_SUITE_COUNTS=$counts "$python" -m pytest -q -n "$workers" --dist loadfile --no-loadscope-reorder \
  --suite-phase=parallel "$@"
parallel=$?
HSMNODE_SUITE_COUNTS=$counts "$python" -m pytest -q --suite-phase=serial "$@"
serial=$?

awk '{ for (i = 1; i <= NF; i += 2) n[$i] += $(i + 1) }
  END { printf "suite: %d passed, %d failed, %d skipped\n", n["passed"], n["failed"] + n["error"], n["skipped"] }' "$counts"
if [ "$parallel" = 5 ] && [ "$serial" = 5 ]; then exit 5; fi
for status in "$parallel" "$serial"; do
  if [ "$status" != 0 ] && [ "$status" != 5 ]; then exit "$status"; fi
done
exit 0
