#!/usr/bin/env bash
# Gathers what scripts/gpu_check.py needs on a device machine (no internet there) into .gpu/,
# which git ignores and the device tool carries (carry: [".gpu"]):
#
#   .gpu/refs/stylegan2-ada-pytorch, .gpu/refs/stylegan3, .gpu/refs/BigGAN-PyTorch
#       the reference implementations, exported from bare git mirrors (`git archive HEAD`; only
#       their code folders, no docs); never committed, never part of ganzoo
#   .gpu/fixtures/   the reference fixtures the exactness part's tests read (a subset of
#                    ../shared/fixtures: the whole folder is over the device tool's 64 MiB)
#   .gpu/wheels/     ganzoo's dependencies the device image lacks, for CPython 3.12 manylinux
#
# Usage:
#   scripts/gpu_check_prepare.sh [--sg2-mirror DIR] [--sg3-mirror DIR] [--biggan-mirror DIR] [--fixtures DIR]
# A mirror is what the `fetch` tool returns for github:NVlabs/stylegan2-ada-pytorch,
# github:NVlabs/stylegan3, github:ajbrock/BigGAN-PyTorch. Then, with the device tool
# (README, Benchmarks):
#   run(command=<the README's command>, carry=[".gpu"], timeout_s=560)
set -euo pipefail
cd "$(dirname "$0")/.."
sg2= sg3= biggan= fixtures=../shared/fixtures
while [ $# -gt 0 ]; do
  case "$1" in
    --sg2-mirror) sg2=$2; shift 2 ;;
    --sg3-mirror) sg3=$2; shift 2 ;;
    --biggan-mirror) biggan=$2; shift 2 ;;
    --fixtures) fixtures=$2; shift 2 ;;
    *) echo "error: unknown argument $1" >&2; exit 2 ;;
  esac
done
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/refs .gpu/fixtures .gpu/wheels

export_ref() {  # mirror, name, folders...
  local mirror=$1 name=$2; shift 2
  [ -n "$mirror" ] || return 0
  mkdir -p ".gpu/refs/$name"
  git --git-dir="$mirror" archive HEAD "$@" | tar -x -C ".gpu/refs/$name"
  echo "reference $name <- $mirror"
}
export_ref "$sg2" stylegan2-ada-pytorch training torch_utils dnnlib
export_ref "$sg3" stylegan3 training torch_utils dnnlib
export_ref "$biggan" BigGAN-PyTorch BigGAN.py BigGANdeep.py layers.py losses.py train_fns.py utils.py datasets.py inception_utils.py animal_hash.py sync_batchnorm

# What scripts/gpu_check.py's FIXTURE_TESTS read (GP-GAN's resnet2-32 is left out: with it the
# carry passes 64 MiB; its networks have no CUDA-specific code path).
for sub in stylegan2-ada/tiny32 stylegan2-ada/cond64 stylegan2-ada/loss32 stylegan2-ada/augment32 stylegan3/sg3t32 biggan/biggan64; do
  mkdir -p ".gpu/fixtures/$(dirname "$sub")"
  cp -r "$fixtures/$sub" ".gpu/fixtures/$sub"
done
cp "$fixtures/README.md" .gpu/fixtures/

# Wheels of what ganzoo imports and the image lacks (KINDS.md lists what it has), the versions
# this checkout is tested with. Not POT (the playground's; 32 MB would not fit the carry limit).
pip_version() { python -c "import importlib.metadata as m; print(m.version('$1'))"; }
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/wheels "typer==$(pip_version typer)" "torch-fidelity==$(pip_version torch-fidelity)"
du -sh .gpu/* | sed 's/^/  /'
echo "ready: carry [\".gpu\"] (the working tree and .gpu together must stay under 64 MiB)"
