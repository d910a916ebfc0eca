/**
 * Entry point: OpenTelemetry first (when the OTEL_* variables ask for it), so
 * the HTTP, undici and pg modules it instruments are loaded after it; then
 * the service itself (service.ts).
 */
import { startTelemetry } from "@georep/runtime/telemetry";

await startTelemetry({ serviceName: "georep-status" });
await import("./service.js");
