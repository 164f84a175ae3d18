# paysim's container image: `make docker-build` (Docker) or `make docker-verify` (buildah, as CI does).
# Plain Dockerfile syntax only: it builds unchanged with Docker BuildKit, Docker's legacy builder,
# buildah and podman (no `# syntax=` frontend to pull, no `RUN --mount`, no heredocs).
# Three stages: `build` compiles the TypeScript, `deps` installs the production dependencies,
# `runtime` gets the compiled JavaScript, those dependencies and package.json (read at start for
# the OpenAPI document's version), runs as the non-root `node` user and is configured only by the
# environment (README "Configuration"), e.g. docker run -e WEBHOOK_SECRET=… -p 8080:8080 paysim.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
WORKDIR /app
# Owned by root and read-only to the `node` user: the service writes nothing under /app.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Metadata last, so that a new VERSION or REVISION reuses every layer above from the build cache.
# VERSION defaults to package.json's version (test/integration/dockerfile.test.ts keeps them equal);
# scripts/docker-verify.sh passes it, with REVISION (the git commit), as --build-arg. SOURCE is the
# repository's public URL: override it with --build-arg SOURCE=… if the default is not where it lives.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/paysim/paysim
LABEL org.opencontainers.image.title="paysim" \
      org.opencontainers.image.description="A payment simulator for local stacks, CI and load tests: payment intents, scenario-driven outcomes and signed, retried webhooks." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"
USER node
EXPOSE 8080
# node is the one HTTP client in the image (no curl); PORT follows `docker run -e PORT=…`.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM (docker stop's signal) starts the graceful drain; the process exits 0 when it is done.
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]
