#!/usr/bin/env bash
# make test's pytest run, in the two phases of tests/conftest.py: every test not marked `serial` under
# pytest-xdist with WORKERS workers, then the `serial` ones alone on the machine (they observe timing).
# Both phases run whatever the first one found (but see below); the last line adds up their counts.
#
#   scripts/test-suite.sh PYTHON WORKERS [pytest arguments, e.g. make test's PYTEST_ARGS]
#
# Exit status: 0 when both phases passed, or one passed and the other had no test to run (the
# arguments picked tests of one phase only: pytest's 5); otherwise the first phase's failing status.
# An interrupted parallel phase (pytest's 2) or a usage error (4) ends the run there.
set -u
python=$1
workers=$2
shift 2
counts=$(mktemp)
trap 'rm -f "$counts"' EXIT

HSMNODE_SUITE_COUNTS=$counts "$python" -m pytest -q -n "$workers" --dist loadfile --no-loadscope-reorder \
  --suite-phase=parallel "$@"
parallel=$?
# interrupted (Ctrl-C) or a usage error: the serial phase would only repeat it
if [ "$parallel" = 2 ] || [ "$parallel" = 4 ]; then exit "$parallel"; fi
HSMNODE_SUITE_COUNTS=$counts "$python" -m pytest -q --suite-phase=serial "$@"
serial=$?

awk '{ for (i = 1; i <= NF; i += 2) n[$i] += $(i + 1) }
  END { printf "suite: %d passed, %d failed, %d skipped\n", n["passed"], n["failed"] + n["error"], n["skipped"] }' "$counts"
if [ "$parallel" = 5 ] && [ "$serial" = 5 ]; then exit 5; fi
for status in "$parallel" "$serial"; do
  if [ "$status" != 0 ] && [ "$status" != 5 ]; then exit "$status"; fi
done
exit 0
