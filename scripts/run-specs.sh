#!/usr/bin/env bash
# Run the busted specs with TAP output and print a one-line summary:
#   N passed, N failed[, N skipped]
# usage: run-specs.sh [BUSTED-ARG...]   (default: what .busted configures)
# Fails if anything failed, busted itself failed, or no test ran.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The shared suite (lua/activerecord/testsuite) runs through the MySQL
# provider unless another one is named.
export AR_TESTSUITE_PROVIDER=${AR_TESTSUITE_PROVIDER:-providers.mysql}

tap=$(mktemp)
trap 'rm -f "$tap"' EXIT

# Keep the tee'd copy to count results; busted's own status is checked too
# because a crash (e.g. a segfault in the C core) may leave the TAP short.
rc=0
busted --lua=lua5.4 -o TAP "$@" | tee "$tap" || rc=${PIPESTATUS[0]}

# busted's TAP: "ok N - name", "not ok N - name" (failures and errors alike),
# pending as "ok N - # SKIP name", and a trailing plan "1..N".
read -r passed failed skipped plan < <(awk '
    /^ok [0-9]+/ { if (tolower($0) ~ /# *skip/) s++; else p++; next }
    /^not ok [0-9]+/ { f++; next }
    /^1\.\.[0-9]+/ { plan = substr($0, 4) + 0 }
    END { printf "%d %d %d %d\n", p, f, s, (plan == "" ? -1 : plan) }
' "$tap")

total=$((passed + failed + skipped))
status=0
if ((failed > 0)); then
    echo "Failed tests:" >&2
    grep -E '^not ok [0-9]+' "$tap" >&2 || true
    status=1
fi
if ((rc != 0)); then
    echo "busted exited with status $rc" >&2
    status=1
fi
if ((total == 0)); then
    echo "No tests ran (wrong path or pattern, or no specs found)." >&2
    status=1
elif ((plan < 0)); then
    echo "No TAP plan line: busted stopped early (crash or os.exit in a spec?)" >&2
    status=1
elif ((plan != total)); then
    echo "TAP plan says $plan tests but $total reported (busted crashed?)" >&2
    status=1
fi

summary="$passed passed, $failed failed"
((skipped > 0)) && summary+=", $skipped skipped"
echo "$summary"
exit "$status"
