# scaler in one container: the Go binary (cgo + libzmq) with every scaler_* link, and the Python
# package that clients and processors import. The default command starts the built-in stack
# (object storage, scheduler, one worker per core but one, web UI):
#
#   docker build -t scaler .
#   docker run --rm -p 8516-8518:8516-8518 -p 8081:8081 scaler
#   docker run --rm scaler up --dump-config                  # what the default command runs
#   docker run --rm -v $PWD/stack.toml:/stack.toml -p ... scaler up -c /stack.toml
#   docker run --rm -p 8516-8518:8516-8518 scaler scheduler tcp://0.0.0.0:8516
#
# The bases are build arguments so that other registries, pinned digests or locally built
# stand-ins (.ci/image builds this file with buildah on debootstrapped ones) can be used. The
# build stage needs libzmq's headers, pkg-config and a C compiler; it installs the headers when
# the base lacks them. GOFLAGS and GOPROXY pass through (GOPROXY=off with a base that carries the
# module cache builds without network).

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
ARG GOFLAGS
ARG GOPROXY
RUN if ! pkg-config --exists libzmq 2>/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends libzmq3-dev pkg-config \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build cache survives between builds where the builder keeps cache mounts (BuildKit,
# buildah); nothing of it goes into a layer.
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -buildvcs=false -trimpath -ldflags="-s -w" -o /out/scaler . \
 && /out/scaler --version

FROM ${RUNTIME_IMAGE}
# PIP_CA_BUNDLE: a CA bundle file for pip, when the build runs behind a TLS-intercepting proxy
# (.ci/image mounts the machine's); unset, pip trusts its own bundle.
ARG PIP_CA_BUNDLE
COPY python /tmp/scaler-python
# One layer: libzmq5 (the binary's transport) and python3 stay; what only makes the environment
# and installs the package into it (python3-venv, pip, setuptools, apt's lists) goes again. The
# Go binary is copied from the build stage, so pip must not try to build it (there is no Go here).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq5 python3 python3-venv \
 && if [ -n "${PIP_CA_BUNDLE:-}" ]; then export PIP_CERT="$PIP_CA_BUNDLE"; fi \
 && python3 -m venv /opt/scaler \
 && SCALER_SKIP_GO_BUILD=1 /opt/scaler/bin/pip install --no-cache-dir --disable-pip-version-check /tmp/scaler-python \
 && /opt/scaler/bin/pip uninstall -y -q pip setuptools \
 && apt-get purge -y --auto-remove python3-venv \
 && rm -rf /tmp/scaler-python /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
COPY --from=build /out/scaler /opt/scaler/bin/scaler
# pip installed the scaler_* commands as console scripts that run the binary through Python;
# links to the binary start without an interpreter. /var/log/scaler is the seed's example log
# directory (testdata/example_config.toml), writable by the unprivileged user.
RUN rm /opt/scaler/bin/scaler_* && /opt/scaler/bin/scaler install-links /opt/scaler/bin \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/scaler scaler \
 && install -d -o scaler -g scaler /var/log/scaler
ENV PATH=/opt/scaler/bin:$PATH \
    SCALER_PYTHON=/opt/scaler/bin/python3 \
    PYTHONDONTWRITEBYTECODE=1
USER scaler
WORKDIR /home/scaler
# 8516 scheduler, 8517 object storage, 8518 monitor feed, 8081 web UI (scaler up's built-in stack)
EXPOSE 8516 8517 8518 8081
ENTRYPOINT ["scaler"]
CMD ["up"]
