# CPU image: installs edge-compress and runs the demo recipe by default.
#   docker build -t edge-compress .
#   docker run --rm -v "$PWD/runs:/app/runs" edge-compress
#   docker run --rm -v "$PWD:/work" -w /work edge-compress edge-compress run my_recipe.yaml
# GPU image: see README.md ("Docker"): start FROM an nvidia/cuda runtime image, set
# TORCH_SPEC to a CUDA build of torch and install the `gpu` extra (onnxruntime-gpu).
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# torch first and pinned, so nothing below pulls another build of it.
RUN pip install ${TORCH_SPEC}
COPY pyproject.toml README.md ./
COPY compress ./compress
RUN pip install ".[inc,openvino,rl]"
COPY pipelines ./pipelines

CMD ["edge-compress", "run", "pipelines/digits_edge.yaml", "--overwrite"]
