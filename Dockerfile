# The image every remote job runs (cloud=k8s, aws_batch, gcp_batch): lret_runner with its
# config inside the package and the engines' clients (the `cloud` extra). A job runs
# `python -m lret_runner.cloud.entry SOURCE` (its staged, resolved config); by default the
# image runs `python -m lret_runner` (the quickstart). Build: make image (IMAGE=name:tag).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg

WORKDIR /src
COPY pyproject.toml README.md ./
COPY lret_runner ./lret_runner
COPY hydra_plugins ./hydra_plugins
RUN pip install ".[cloud]" && rm -rf /src

# an unprivileged user; the jobs write their output under its home
RUN useradd --create-home --uid 1000 lret
USER lret
WORKDIR /home/lret

# no ENTRYPOINT: AWS Batch, Kubernetes and Cloud Batch each give the full command
CMD ["python", "-m", "lret_runner", "+experiment=quickstart"]
