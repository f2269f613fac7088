# CPU image: installs edge-compress and runs the demo recipe by default, as a non-root user.
#   docker build -t edge-compress .
#   docker run --rm -v "$PWD/runs:/work/runs" edge-compress
#   docker run --rm -v "$PWD:/work" edge-compress edge-compress run my_recipe.yaml
# Threads follow the container's CPU quota (docker run --cpus 2 -> 2 threads), not the host's cores.
# GPU image: see README.md ("Docker"): start FROM an nvidia/cuda runtime image, set
# TORCH_SPEC to a CUDA build of torch and install the `gpu` extra (onnxruntime-gpu).
FROM python:3.11-slim

# the CPU build of torch, named explicitly: a plain `pip install torch` pulls the multi-GB CUDA build
ARG TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 MPLCONFIGDIR=/opt/matplotlib

WORKDIR /src
# torch first and pinned, so nothing below pulls another build of it.
RUN pip install ${TORCH_SPEC}
COPY pyproject.toml README.md ./
COPY compress ./compress
RUN pip install ".[inc,openvino,rl]" \
    # matplotlib's font cache, built once here instead of on every container's first report
    && mkdir -p "$MPLCONFIGDIR" && python -c "import matplotlib.font_manager" && chmod -R a+rX "$MPLCONFIGDIR" \
    && useradd --create-home --uid 1000 edge && mkdir -p /work && chown edge /work

USER edge
WORKDIR /work
CMD ["edge-compress", "run", "digits_edge", "--overwrite"]
