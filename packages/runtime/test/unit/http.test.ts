import { Writable } from "node:stream";
import Fastify from "fastify";
import { Type } from "@sinclair/typebox";
import { describe, expect, it } from "vitest";
import { HttpError, createHttpErrorHandler, createLogger, notFoundHandler } from "../../src/index.js";
import type { HttpErrorBody } from "../../src/index.js";

function setup() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(c: Buffer, _e, cb) {
      for (const l of c.toString().split("\n")) if (l !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ name: "t", destination, level: "info" });
  const app = Fastify();
  app.setErrorHandler(createHttpErrorHandler(logger));
  app.setNotFoundHandler(notFoundHandler);
  app.get("/boom", async () => {
    throw new Error("db password is hunter2");
  });
  app.get("/teapot", async () => {
    throw new HttpError(503, "INGEST_ERR_JETSTREAM", "JetStream did not ack; retry");
  });
  app.post("/validated", { schema: { body: Type.Object({ n: Type.Integer() }) } }, async () => ({ ok: true }));
  return { app, lines };
}

describe("createHttpErrorHandler", () => {
  it("5xx: generic message, logged at error with the real one", async () => {
    const { app, lines } = setup();
    const res = await app.inject({ url: "/boom" });
    expect(res.statusCode).toBe(500);
    expect(res.json<HttpErrorBody>()).toEqual({
      statusCode: 500,
      code: "INTERNAL_ERROR",
      error: "Internal Server Error",
      message: "Internal Server Error",
    });
    const line = lines.find((l) => l.msg === "request failed");
    expect(line?.level).toBe("error");
    expect(JSON.stringify(line)).toContain("hunter2");
    await app.close();
  });

  it("HttpError keeps its status, code and message", async () => {
    const { app } = setup();
    const res = await app.inject({ url: "/teapot" });
    expect(res.statusCode).toBe(503);
    expect(res.json<HttpErrorBody>()).toEqual({
      statusCode: 503,
      code: "INGEST_ERR_JETSTREAM",
      error: "Service Unavailable",
      message: "JetStream did not ack; retry",
    });
    await app.close();
  });

  it("4xx: fastify validation errors keep their code and message, logged at info", async () => {
    const { app, lines } = setup();
    const res = await app.inject({ method: "POST", url: "/validated", payload: { n: "x" } });
    expect(res.statusCode).toBe(400);
    const body = res.json<HttpErrorBody>();
    expect(body).toMatchObject({ statusCode: 400, code: "FST_ERR_VALIDATION", error: "Bad Request" });
    expect(body.message).toMatch(/n/);
    expect(lines.find((l) => l.msg === "request rejected")?.level).toBe("info");
    await app.close();
  });

  it("unknown routes answer 404 in the same shape", async () => {
    const { app } = setup();
    const res = await app.inject({ url: "/nope?x=1" });
    expect(res.statusCode).toBe(404);
    expect(res.json<HttpErrorBody>()).toEqual({
      statusCode: 404,
      code: "NOT_FOUND",
      error: "Not Found",
      message: "no route for GET /nope",
    });
    await app.close();
  });
});
