import { describe, expect, it } from "vitest";
import { HttpError } from "@georep/runtime";
import { toHttpError, unavailableFrom } from "../../src/errors.js";

describe("unavailableFrom", () => {
  const down: [string, unknown][] = [
    ["a refused connection", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })],
    ["an AggregateError of refused connections", Object.assign(new AggregateError([], "connect failed"), { code: "ECONNREFUSED" })],
    ["Postgres shutting down (57P01)", Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" })],
    ["a connection exception (08006)", Object.assign(new Error("connection failure"), { code: "08006" })],
    ["too many connections (53300)", Object.assign(new Error("sorry, too many clients already"), { code: "53300" })],
    ["a missing table (42P01)", Object.assign(new Error('relation "geo_events" does not exist'), { code: "42P01" })],
    ["a pool timeout", new Error("timeout exceeded when trying to connect")],
    ["a terminated connection", new Error("Connection terminated unexpectedly")],
    ["a closed NATS connection", Object.assign(new Error("closed connection"), { name: "ClosedConnectionError" })],
  ];
  it.each(down)("takes %s for 503 unavailable", (_name, error) => {
    const http = unavailableFrom(error);
    expect(http).toBeInstanceOf(HttpError);
    expect(http).toMatchObject({ statusCode: 503, code: "unavailable" });
  });

  const bugs: [string, unknown][] = [
    ["a syntax error in SQL (42601)", Object.assign(new Error("syntax error"), { code: "42601" })],
    ["a data exception (22007)", Object.assign(new Error("invalid input syntax for type timestamp"), { code: "22007" })],
    ["a TypeError", new TypeError("x is not a function")],
    ["a string", "boom"],
    ["an HttpError", new HttpError(404, "not_found", "nope")],
  ];
  it.each(bugs)("leaves %s alone", (_name, error) => {
    expect(unavailableFrom(error)).toBeUndefined();
  });
});

describe("toHttpError", () => {
  it("keeps HttpErrors, maps 4xx to snake_case codes and hides the rest as internal_error", () => {
    const notFound = new HttpError(404, "not_found", "nope");
    expect(toHttpError(notFound)).toBe(notFound);
    expect(toHttpError(Object.assign(new Error("Unsupported Media Type"), { statusCode: 415, code: "FST_ERR_CTP_INVALID_MEDIA_TYPE" }))).toMatchObject({
      statusCode: 415,
      code: "unsupported_media_type",
    });
    expect(toHttpError(Object.assign(new Error("Body cannot be empty"), { statusCode: 400, code: "FST_ERR_CTP_EMPTY_JSON_BODY" }))).toMatchObject({
      statusCode: 400,
      code: "invalid_request",
    });
    const internal = toHttpError(new TypeError("x is not a function"));
    expect(internal).not.toBeInstanceOf(HttpError);
    expect(internal).toMatchObject({ statusCode: 500, code: "internal_error" });
  });

  it("names the field of a validation error", () => {
    const validation = (context: string, errors: unknown[]) => Object.assign(new Error("bad"), { statusCode: 400, validation: errors, validationContext: context });
    const cases: [Error, string][] = [
      [validation("querystring", [{ keyword: "maximum", instancePath: "/limit", message: "must be <= 500", params: {} }]), 'query field "limit" must be <= 500'],
      [validation("body", [{ keyword: "required", instancePath: "", message: "must have required property 'scope'", params: { missingProperty: "scope" } }]), 'body field "scope" is required'],
      [validation("body", [{ keyword: "additionalProperties", instancePath: "", message: "x", params: { additionalProperty: "extra" } }]), 'body field "extra" is not allowed'],
      [validation("body", [{ keyword: "type", instancePath: "", message: "must be object", params: { type: "object" } }]), "body must be a JSON object"],
      [
        validation("params", [{ keyword: "pattern", instancePath: "/*", message: "must match pattern", params: {}, parentSchema: { title: "repository name" } }]),
        'path field "repository" is not a valid repository name',
      ],
      [
        validation("querystring", [{ keyword: "enum", instancePath: "/sort", message: "must be equal to one of the allowed values", params: { allowedValues: ["a", "b"] } }]),
        'query field "sort" must be one of: a, b',
      ],
    ];
    for (const [error, message] of cases) expect(toHttpError(error)).toMatchObject({ statusCode: 400, code: "invalid_request", message });
  });
});
