# One image for every gbmseg step (DVC locally, Kubeflow components on a cluster).
# GPU nodes: default build (CUDA-capable torch from PyPI). CPU-only image:
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu -t gbmseg:cpu .
# checkov:skip=CKV_DOCKER_7:the base tag is pinned in ARG PYTHON_IMAGE (checkov cannot expand ARGs)
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# torch first, from the chosen index (CUDA wheels by default, CPU wheels with TORCH_INDEX)
RUN if [ -n "$TORCH_INDEX" ]; then pip install --index-url "$TORCH_INDEX" torch==2.13.0; \
    else pip install torch==2.13.0; fi \
 && pip install -c constraints.txt .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="gbmseg" \
      org.opencontainers.image.description="EM segmentation pipeline steps (validate ... register)"
RUN groupadd --system --gid 10001 gbmseg \
 && useradd --system --uid 10001 --gid gbmseg --home-dir /home/gbmseg --create-home gbmseg
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NO_ALBUMENTATIONS_UPDATE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false
WORKDIR /home/gbmseg
COPY --chown=gbmseg:gbmseg params.yaml ./
USER 10001:10001
HEALTHCHECK NONE
ENTRYPOINT ["gbmseg"]
CMD ["--help"]
