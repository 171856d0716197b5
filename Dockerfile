# Training image: Python 3.11 + PyTorch 2.13.0 with CUDA.
#
# PyPI's torch 2.13.0 wheel for Linux x86_64 is the CUDA 13.0 build and brings the CUDA
# runtime and cuDNN as pip packages, so a plain Python base image is enough (a CUDA base
# image would carry a second copy). The host needs an NVIDIA driver for CUDA 13 and the
# NVIDIA Container Toolkit; without a GPU the same image trains on the CPU.
#
#   docker build -t spoter-embeddings .
#   docker run --gpus all \
#       -v "$PWD/data:/data:ro" \
#       -v "$PWD/out-checkpoints:/app/out-checkpoints" \
#       spoter-embeddings [train.sh arguments]
#
# Volumes: /data is for your own landmark data sets (read-only is enough; point the
# training options at paths under /data). /app/out-checkpoints receives checkpoints and
# logs; mount it to keep them after the container exits.
FROM python:3.11.14-slim-bookworm

# Must equal the torch pin in requirements.txt (tests/test_packaging.py checks it).
ARG TORCH_VERSION=2.13.0

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH

# libgl1 + libglib2.0-0: shared libraries that OpenCV (used by MediaPipe) loads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The venv lives where scripts/setup_env.sh puts it, so train.sh finds .venv/bin/python.
# torch first, in its own layer: it is by far the largest download.
RUN python -m venv /app/.venv \
    && pip install --no-cache-dir "torch==${TORCH_VERSION}"

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt && pip check

COPY . .

VOLUME ["/data", "/app/out-checkpoints"]

ENTRYPOINT ["bash", "train.sh"]
