# syntax=docker/dockerfile:1
# One image for every georep service; compose chooses the service with
# `command:` (e.g. node services/ingest/dist/main.js). Build it with
# `docker compose ... build` (deploy/README.md) or `docker build -t georep:local .`
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
ENV CI=true TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
WORKDIR /src
# pnpm at the version package.json pins; corepack is not used (docs/adr-001-foundation.md).
COPY package.json ./
RUN npm install --global --no-audit --no-fund --loglevel=error \
      "pnpm@$(node -p 'require("./package.json").packageManager.split("@")[1]')"
# Every package of the lockfile into pnpm's store: this layer is rebuilt only when the lockfile changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline \
 && pnpm exec turbo run build --filter='./services/*'
# Keep what the services run: their production dependencies (workspace packages
# included, linked as in development) and the built files.
RUN rm -rf node_modules packages/*/node_modules services/*/node_modules \
 && pnpm install --frozen-lockfile --offline --prod \
      --filter '@georep/ingest...' --filter '@georep/event-log...' --filter '@georep/dispatcher...' \
      --filter '@georep/transfer...' --filter '@georep/status...' \
 && rm -rf packages/*/src packages/*/test packages/*/bench services/*/src services/*/test services/*/bench \
      .turbo packages/*/.turbo services/*/.turbo docs scripts deploy

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src /app
# The node image's unprivileged user (uid 1000); secrets must be readable by it (deploy/README.md).
USER node
EXPOSE 8080
CMD ["node", "services/status/dist/main.js"]
