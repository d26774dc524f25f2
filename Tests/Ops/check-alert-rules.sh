#!/bin/bash
# make check-ops: the Prometheus alerting rules in contrib/prometheus.
# promtool check rules (syntax, PromQL, templates), promtool test rules
# against the series in virt-sanlock-cleanup.rules.test.yml, and every metric
# the rules' expressions name is one the tool writes (Sources/SanlockCleanup/
# Report/MetricsFile.swift: the cleaning run's and the audit's). Installs
# Debian's prometheus package for promtool (no service is started:
# .ci/deps). Usage: Tests/Ops/check-alert-rules.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=SCRIPTDIR/../lib/test-functions.sh
. Tests/lib/test-functions.sh

.ci/deps prometheus
rules=contrib/prometheus/virt-sanlock-cleanup.rules.yml
tests=contrib/prometheus/virt-sanlock-cleanup.rules.test.yml

if out=$(promtool check rules "$rules" 2>&1); then ok "promtool check rules: $(grep -o '[0-9]* rules found' <<<"$out")"
else fail "promtool check rules:"; echo "$out" >&2; fi
if out=$(promtool test rules "$tests" 2>&1); then ok "promtool test rules $(basename "$tests")"
else fail "promtool test rules:"; echo "$out" >&2; fi

written=$(grep -o 'gauge("[a-z_]*"' Sources/SanlockCleanup/Report/MetricsFile.swift | sed 's/gauge("/virt_sanlock_cleanup_/; s/"$//' | sort -u)
[ -n "$written" ] || fail "no gauge names found in MetricsFile.swift"
for metric in $(grep -E '^ *expr:' "$rules" | grep -o 'virt_sanlock_cleanup_[a-z_]*' | sort -u); do
    grep -qx "$metric" <<<"$written" && ok "$metric is written by --metrics-file" \
        || fail "$rules names $metric, which MetricsFile.swift does not write"
done

finish check-alert-rules
