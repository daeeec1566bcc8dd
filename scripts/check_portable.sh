#!/usr/bin/env bash
# The portability check (issue 25): the test suite under every CPU code path this machine can
# emulate and under 1 and 2 torch threads, one line per setting.
#
#   scripts/check_portable.sh                       # the default suite (about 6 x 7 min on 2 cores)
#   scripts/check_portable.sh tests/test_merge.py   # any pytest arguments instead
#   CHECK_THREADS="1" CHECK_CAPABILITIES="avx2" scripts/check_portable.sh ...   # a part of the grid
#
# A setting lowers ATen's kernels (ATEN_CPU_CAPABILITY), oneDNN's (ONEDNN_MAX_CPU_ISA), MKL's
# (MKL_ENABLE_INSTRUCTIONS) and numpy's (NPY_DISABLE_CPU_FEATURES: its sin, exp, power, ... round
# differently per instruction set) together, so "avx2" on an AVX-512 machine runs roughly what an
# AVX2 machine runs. The settings are scripts/study_margins.py's (one table for both). The thread
# count reaches every test through GANZOO_TEST_THREADS (tests/helpers.py: threads_for_tests);
# OpenMP waits passively (it changes no number, and two spinning threads on a core another job
# uses can run 30x slower). Exit status: 0 when every setting passed.
set -uo pipefail
cd "$(dirname "$0")/.."

settings=$(python scripts/study_margins.py --print-settings ${CHECK_CAPABILITIES:+--capabilities "${CHECK_CAPABILITIES// /,}"}) || exit 1
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); torch $(python -c 'import torch; print(torch.__version__, "best ATen capability", torch.backends.cpu.get_cpu_capability())')"

status=0
while read -r capability assignments; do
  for threads in ${CHECK_THREADS:-1 2}; do
    log=$(mktemp)
    start=$(date +%s)
    (eval "export $assignments"; GANZOO_TEST_THREADS=$threads OMP_WAIT_POLICY=PASSIVE \
      python -m pytest -q -p no:cacheprovider "$@" >"$log" 2>&1)
    rc=$?
    summary=$(grep -E '(passed|failed|error|skipped|no tests ran)' "$log" | tail -n 1 | sed 's/=//g; s/^ *//; s/ *$//')
    printf 'capability=%-7s threads=%s  %s  (%ss, exit %s)\n' "$capability" "$threads" "$summary" "$(( $(date +%s) - start ))" "$rc"
    if [ "$rc" -ne 0 ]; then
      status=1
      grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /'
    fi
    rm -f "$log"
  done
done <<< "$settings"
exit $status
