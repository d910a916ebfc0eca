/**
 * For the ingest benchmark: a bare fastify server that answers an envelope
 * at once, with no authentication, no NATS and no bookkeeping. Its rate is
 * the most any HTTP notification endpoint in Node reaches on this machine
 * with the same client; ingest's own cost is the distance to it. Prints its
 * address on stdout.
 */
import fastify from "fastify";

const app = fastify({ logger: false });
app.post("/events", async (request) => {
  const { events } = request.body as { events: unknown[] };
  return { received: events.length, published: events.length, duplicates: 0, ignored: 0, dead_lettered: 0 };
});
process.stdout.write(`${await app.listen({ host: "127.0.0.1", port: 0 })}\n`);
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
