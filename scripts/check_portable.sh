#!/usr/bin/env bash
# The portability check (issue 25): the test suite under every CPU code path this machine can
# emulate and under 1 and 2 torch threads, one line per setting.
#
#   scripts/check_portable.sh                       # the default suite (about 6 x 20 min on 2 cores)
#   scripts/check_portable.sh tests/test_merge.py   # any pytest arguments instead
#   CHECK_THREADS="1" CHECK_CAPABILITIES="avx2" scripts/check_portable.sh ...   # a part of the grid
#
# A setting lowers ATen's kernels (ATEN_CPU_CAPABILITY), oneDNN's (ONEDNN_MAX_CPU_ISA), MKL's
# (MKL_ENABLE_INSTRUCTIONS) and numpy's (NPY_DISABLE_CPU_FEATURES: its sin, exp, power, ... round
# differently per instruction set) together, so "avx2" on an AVX-512 machine runs roughly what an
# AVX2 machine runs; the thread count reaches every test through GANZOO_TEST_THREADS
# (tests/helpers.py: threads_for_tests); OpenMP waits passively (it changes no number, and two spinning
# threads on a core another job uses can run 30x slower). Exit status: 0 when every setting passed.
set -uo pipefail
cd "$(dirname "$0")/.."

top=$(python -c "import torch; print(torch.backends.cpu.get_cpu_capability())")
case "$top" in
  AVX512*) capabilities="default avx2 avx512" ;;
  AVX2) capabilities="default avx2" ;;
  *) capabilities="default" ;;
esac
capabilities=${CHECK_CAPABILITIES:-$capabilities}
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); torch $(python -c 'import torch; print(torch.__version__)'), best ATen capability $top"

status=0
for capability in $capabilities; do
  case "$capability" in
    default) onednn=SSE41; mkl=SSE4_2; numpy_off="X86_V3 X86_V4 AVX512_ICL AVX512_SPR" ;;
    avx2) onednn=AVX2; mkl=AVX2; numpy_off="X86_V4 AVX512_ICL AVX512_SPR" ;;
    avx512) onednn=ALL; mkl=AVX512; numpy_off="" ;;
  esac
  for threads in ${CHECK_THREADS:-1 2}; do
    log=$(mktemp)
    start=$(date +%s)
    ATEN_CPU_CAPABILITY=$capability ONEDNN_MAX_CPU_ISA=$onednn MKL_ENABLE_INSTRUCTIONS=$mkl NPY_DISABLE_CPU_FEATURES=$numpy_off \
      GANZOO_TEST_THREADS=$threads OMP_WAIT_POLICY=PASSIVE python -m pytest -q -p no:cacheprovider "$@" >"$log" 2>&1
    rc=$?
    summary=$(grep -E '(passed|failed|error|skipped|no tests ran)' "$log" | tail -n 1 | sed 's/=//g; s/^ *//; s/ *$//')
    printf 'capability=%-7s threads=%s  %s  (%ss, exit %s)\n' "$capability" "$threads" "$summary" "$(( $(date +%s) - start ))" "$rc"
    if [ "$rc" -ne 0 ]; then
      status=1
      grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /'
    fi
    rm -f "$log"
  done
done
exit $status
