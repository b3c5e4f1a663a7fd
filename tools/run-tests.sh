#!/bin/bash
# make test: run the Criterion binary where a KVM is (tools/with-kvm.sh: here,
# or inside a QEMU VM), say which KVM that was, and end with the counts of
# passed, failed and skipped tests.
#
#   tools/run-tests.sh BIN [Criterion options, e.g. --filter='guests/*']
#
# The VMM's own messages (thousands of expected errors from the negative tests)
# go to BIN's folder/results/messages.log and are shown only when a test fails;
# Criterion's lines are shown as they come. A run that skipped a test fails
# unless VMFORK_ALLOW_SKIP=1: a skipped KVM test proves nothing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# Criterion's own lines and the tests' notes (seeds); everything else on stderr is the VMM's.
criterion_lines='^\[(FAIL|SKIP|WARN|ERR |----|====|RUN |PASS|NOTE)\]'

# Inside: run Criterion with its lines on stdout and everything on stderr in LOG.
if [ "${1:-}" = --inside ]; then
	bin=$2 json=$3 log=$4
	shift 4
	# --verbose: a [RUN ] line as each test starts names the one a hang is in.
	{ "$bin" --json="$json" --verbose=1 "$@" 2>&1 1>&3 | tee "$log" |
		grep --line-buffered -a -E "$criterion_lines" | grep --line-buffered -a -v 'Test is disabled'
	  status=${PIPESTATUS[0]}; } 3>&1
	exit "$status"
fi

bin=${1:?usage: run-tests.sh BIN [criterion options]}
shift
out=$(cd "$(dirname "$bin")" && pwd)/results
mkdir -p "$out"
json=$out/results.json log=$out/messages.log
rm -f "$json" "$log"
export CRITERION_NO_EARLY_EXIT=1 TERM=dumb
# A whole run takes about 20 minutes under TCG: a QEMU VM still running after
# 45 is hung below the tests' own timeouts, and its kernel's words say where
# (a stalled emulated CPU is woken, or caught, within 20 s).
export VMFORK_QEMU_TIMEOUT=${VMFORK_QEMU_TIMEOUT:-2700}
kind=$("$here/with-kvm.sh" --kind)
echo "run-tests: KVM: $kind"
# Criterion copies control characters (a guest console's \r) into its JSON strings
# unescaped, which jq refuses: make them spaces, which is all they can be outside strings.
clean_json() {
	[ -s "$1" ] || return 0
	tr '\000-\011\013-\037' ' ' <"$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

start=$(date +%s)
abs_bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# run_part JSON [criterion options]: the tests in one KVM (one QEMU VM where
# there is no /dev/kvm). QEMU's emulated CPU now and then loses an interrupt
# under nested KVM; with-kvm wakes it, and exits 75 only when it stays stalled
# (docs/kvm-in-qemu.md): that part runs again, at most twice, and the run says
# so. A test that fails is never rerun.
run_part() {
	local out=$1 rc tries=0
	shift
	while :; do
		rm -f "$out"
		"$here/with-kvm.sh" "$here/run-tests.sh" --inside "$abs_bin" "$out" "$log.part" \
			--color=never "$@"
		rc=$?
		[ "$rc" -eq 75 ] && [ "$tries" -lt 2 ] || break
		tries=$((tries + 1))
		echo "run-tests: the emulated CPU stayed stalled under these tests ($*): running them again ($tries of 2)"
	done
	cat "$log.part" >>"$log" 2>/dev/null
	rm -f "$log.part"
	return "$rc"
}

# In a QEMU VM, the suites go in four parts, each in a VM of its own, so that
# a stall costs its part alone; with /dev/kvm, or options given, one run.
heavy='@(serve|linux|fork|procfork|fuzz|reset|snap|invoke)*/*'
parts=('serve*/*' 'linux*/*' '@(fork|procfork|fuzz|reset|snap|invoke)*/*' "!($heavy)")
status=0
if [ $# -gt 0 ] || [[ $kind != *QEMU* ]]; then
	run_part "$json" "$@" || status=$?
else
	missing=0
	for i in "${!parts[@]}"; do
		run_part "$json.$i" --filter="${parts[$i]}" || status=$?
		[ -s "$json.$i" ] || missing=1
		clean_json "$json.$i"
	done
	# One report, as one run would have written it (none if a part wrote none).
	[ "$missing" = 1 ] ||
		jq -s '{ id: .[0].id, passed: (map(.passed) | add), failed: (map(.failed) | add),
			errored: (map(.errored) | add), skipped: (map(.skipped) | add),
			test_suites: (map(.test_suites) | add) }' "$json".[0-9] >"$json" || rm -f "$json"
	rm -f "$json".[0-9]
fi
secs=$(($(date +%s) - start))

if [ ! -s "$json" ]; then
	echo "run-tests: no results from $bin (status $status); its messages:" >&2
	tail -n 100 "$log" 2>/dev/null >&2
	echo "tests: 0 passed, 1 failed"
	exit 1
fi
clean_json "$json"
if ! jq empty "$json" 2>/dev/null; then
	echo "run-tests: Criterion's results ($json) are not JSON jq can read (status $status)" >&2
	echo "tests: 0 passed, 1 failed"
	exit 1
fi
# Tests left out by --filter are SKIPPED too, with Criterion's own message.
skips=$(jq -r '.test_suites[] | .name as $s | .tests[] |
	select(.status == "SKIPPED" and .messages != ["The test was skipped."]) |
	"\($s)::\(.name): \(.messages | join(" "))"' "$json")
passed=$(jq '.passed' "$json")
failed=$(jq '.failed + .errored' "$json")
nskip=$(printf '%s' "$skips" | grep -c . || true)

[ "$status" -eq 0 ] || echo "run-tests: $(basename "$bin") exited with status $status"
if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ]; then
	echo "run-tests: the VMM's messages during the run ($log):"
	grep -v -a -E "$criterion_lines" "$log" | sed 's/^/  | /'
	echo "run-tests: failed:"
	jq -r '.test_suites[] | .name as $s | .tests[] | select(.status == "FAILED" or .status == "ERRORED") |
		"  \($s)::\(.name): \(.messages | join(" | "))"' "$json"
fi
if [ "$nskip" -gt 0 ]; then
	echo "run-tests: skipped:"
	printf '%s\n' "$skips" | sed 's/^/  /'
fi
echo "run-tests: KVM: $kind; ${secs} s"
echo "tests: $passed passed, $failed failed, $nskip skipped"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ] || exit 1
if [ "$nskip" -gt 0 ] && [ "${VMFORK_ALLOW_SKIP:-0}" != 1 ]; then
	echo "run-tests: $nskip tests were skipped: failing the run (VMFORK_ALLOW_SKIP=1 accepts it)"
	exit 1
fi
exit 0
