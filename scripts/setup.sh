#!/usr/bin/env bash
# One-time set-up on Debian/Ubuntu with Python 3.11: system tools, a virtual environment, the
# pinned Python stack. Idempotent: a second run only checks (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PYTHON:-python3.11}
APT_PKGS="verilator yosys iverilog ccache build-essential make"

need_apt=0
for tool in verilator yosys iverilog ccache g++ make; do
    command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: apt-get not found; install these tools with your package manager: $APT_PKGS" >&2
        exit 2
    fi
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
            echo "error: not root and no sudo; install as root: apt-get install $APT_PKGS" >&2; exit 2
        fi
    fi
    echo "[setup] apt-get install $APT_PKGS"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT_PKGS >/dev/null
fi

if ! command -v "$PY" >/dev/null 2>&1; then
    echo "error: $PY not found; install Python 3.11 (TensorFlow 2.15 + QKeras need it) or set PYTHON=" >&2
    exit 2
fi

STAMP="$VENV/.setup-stamp"
CONSTRAINTS=()  # constraints.txt: the exact versions the tests ran with
[ -f constraints.txt ] && CONSTRAINTS=(-c constraints.txt)
HASH=$(cat pyproject.toml scripts/setup.sh constraints.txt hls/da4ml/requirements.txt 2>/dev/null | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "[setup] pip install -e .[dev] (TensorFlow, QKeras, hls4ml, cocotb, gymnasium, ale-py, MuJoCo)"
$PIP install -q "${CONSTRAINTS[@]}" -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
$PIP show tensorflow-cpu >/dev/null 2>&1 || { echo "error: pip install failed; see the messages above" >&2; exit 2; }
# pynq 4.0.0 pins grpcio-tools 1.64 (protobuf 5), which TensorFlow 2.15 (protobuf < 5) cannot
# share. Only the PL server needs grpc; the Overlay/DMA/MMIO API we use does not.
echo "[setup] pip install --no-deps pynq==4.0.0"
$PIP install -q --no-deps "pynq==4.0.0" "pynqmetadata==0.2.0" "pynqutils==0.1.3" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import pynq, tensorflow, qkeras, hls4ml, cocotb" 2>/dev/null \
    || { echo "error: the Python stack does not import; rerun 'make setup' and read the pip output" >&2; exit 2; }
# da4ml (the fully parallel back end) needs numpy >= 2: its own environment, called through files
DA4ML_VENV=${DA4ML_VENV:-.venv-da4ml}
echo "[setup] $DA4ML_VENV: pip install -r hls/da4ml/requirements.txt (da4ml 0.6.0, numpy 2)"
[ -x "$DA4ML_VENV/bin/python" ] || "$PY" -m venv "$DA4ML_VENV"
"$DA4ML_VENV/bin/python" -m pip install -q -r hls/da4ml/requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
"$DA4ML_VENV/bin/python" -c "import da4ml.trace, da4ml.codegen" 2>/dev/null \
    || { echo "error: the da4ml environment $DA4ML_VENV does not import da4ml; rerun 'make setup' and read the pip output" >&2; exit 2; }
echo "$HASH" > "$STAMP"
echo "[setup] ready"
