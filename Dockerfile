# syntax=docker/dockerfile:1.7
# One code base, two images: `--target cpu` (orb-core, core4, cali, seed, smoke, CPU speech workers
# in dev) and `--target gpu` (whisperx/xtts on CUDA 12). The role is the container command, e.g.
#   node build/services/workers/main.js whisperx
# Both run compiled JavaScript (tsc via `npm run build`), production dependencies only, as
# numeric user 10001 with a read-only root filesystem (only /tmp is written, an emptyDir in k8s).

ARG NODE_VERSION=20.20.2
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04

# ---- build: dev dependencies, tsc, web client bundle ----------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY services ./services
COPY web ./web
RUN npm run build && npm run build:web
# Tiny speech models in the real formats (no weights are downloaded): dev/kind speech workers on
# the CPU image copy them into their /models volume (whisper/ for whisperx, voices/ for xtts).
COPY tools/tiny-models ./tools/tiny-models
RUN npx tsx tools/tiny-models/cli.ts /src/tiny-models

# ---- production node_modules, CPU onnxruntime (the binaries ship inside the npm package) -----
FROM node:${NODE_VERSION}-bookworm-slim AS deps-cpu
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- production node_modules plus onnxruntime's CUDA 12 execution provider (downloaded here) --
FROM node:${NODE_VERSION}-bookworm-slim AS deps-gpu
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# The env var wins over .npmrc's `onnxruntime-node-install=skip`.
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- CPU runtime --------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS cpu
ENV NODE_ENV=production PORT=8080 CORE_MODELS_DIR=/app/models/core EXECUTION_PROVIDER=cpu \
    ORB_WEB_ROOT=/app/web/dist
WORKDIR /app
# ffmpeg encodes /v1/audio/speech's mp3, opus, aac and flac in orb-core (PCM from xtts piped in as it is
# synthesized). Debian's package: ~449 MiB installed with its 190 dependencies on this slim base (apt-get -s
# against the base's package set, Installed-Size summed; libllvm15 via mesa alone is 112 MiB). Only this image:
# the GPU image runs whisperx/xtts, which never encode. Without it the compressed formats answer 501.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
COPY --from=deps-cpu --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/build ./build
COPY --from=build --chown=0:0 /src/web/dist ./web/dist
COPY --from=build --chown=0:0 /src/tiny-models ./models/tiny
COPY --chown=0:0 package.json ./
COPY --chown=0:0 models/core ./models/core
# A short real recording for `orb smoke`'s audio turn (the orb-smoke Job): VAD needs speech.
COPY --chown=0:0 test/fixtures/speech-16k.wav ./share/smoke-utterance.wav
# Golden utterances of `orb smoke --accept` (espeak-ng WAVs + golden.json with the known text).
COPY --chown=0:0 test/fixtures/golden ./share/golden
# Files stay root-owned and read-only to the runtime user; nothing under /app is written.
USER 10001:10001
EXPOSE 8080
CMD ["node", "build/services/orb/main.js"]

# ---- GPU runtime (whisperx, xtts) ----------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
COPY --from=build /usr/local/bin/node /usr/local/bin/node
ENV NODE_ENV=production PORT=8080 EXECUTION_PROVIDER=cuda
WORKDIR /app
COPY --from=deps-gpu --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/build ./build
COPY --chown=0:0 package.json ./
USER 10001:10001
EXPOSE 8080
CMD ["node", "build/services/workers/main.js", "whisperx"]
