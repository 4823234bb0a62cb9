# scaler in one container: the Go binary (cgo + libzmq), every scaler_* link,
# and the Python package that clients and processors import.
#
#   buildah bud --isolation chroot -t scaler .      (or: docker build -t scaler .)
#   docker run --rm -p 8516-8518:8516-8518 scaler scheduler tcp://0.0.0.0:8516

FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq3-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/scaler .

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq5 \
 && rm -rf /var/lib/apt/lists/*
COPY python /tmp/scaler-python
RUN pip install --no-cache-dir /tmp/scaler-python && rm -rf /tmp/scaler-python
COPY --from=build /out/scaler /usr/local/bin/scaler
# pip installed the scaler_* commands (console scripts that run /usr/local/bin/scaler); here they
# are replaced by links to the binary, which start without a Python interpreter.
RUN for c in /usr/local/bin/scaler_*; do rm "$c"; done && scaler install-links /usr/local/bin
ENV SCALER_PYTHON=/usr/local/bin/python3
ENTRYPOINT ["scaler"]
CMD ["--help"]
