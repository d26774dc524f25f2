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

check "promtool check rules $(basename "$rules")" quietly promtool check rules "$rules"
note "$(grep -o '[0-9]* rules found' <<<"$tf_output" || true)"
check "promtool test rules $(basename "$tests")" quietly promtool test rules "$tests"

written=$(grep -o 'gauge("[a-z_]*"' Sources/SanlockCleanup/Report/MetricsFile.swift | sed 's/gauge("/virt_sanlock_cleanup_/; s/"$//' | sort -u)
check "MetricsFile.swift names the gauges it writes" test -n "$written"
while read -r metric; do
    check "$metric, which the rules name, is written by --metrics-file (MetricsFile.swift)" grep -qx "$metric" <<<"$written"
done < <(grep -E '^ *expr:' "$rules" | grep -o 'virt_sanlock_cleanup_[a-z_]*' | sort -u)

finish check-alert-rules
