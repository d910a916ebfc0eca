/** `georep keys generate`: a new token signing key and its self-signed certificate, written with `@georep/jwt` (offline). */
import { resolve } from "node:path";
import { KeyExistsError, KeyUnreadableError, generateKeyMaterial, writeKeyMaterial } from "@georep/jwt";
import type { Command } from "../args.js";
import { EXIT_CODES, KeysError } from "../errors.js";
import type { ExitCode } from "../errors.js";
import { printJson } from "./context.js";
import type { Output } from "./context.js";

/** Subject of the generated certificate. */
export const CERTIFICATE_COMMON_NAME = "georep token signer";

/**
 * Generates and writes `key.pem` (0600) and `cert.pem` into `--out`; refuses to
 * overwrite without `--force`. `--json`: `{"key_file", "certificate_file", "algorithm", "key_id"}`.
 */
export async function runKeysGenerate(out: Output, command: Extract<Command, { name: "keys-generate" }>, cwd: string): Promise<ExitCode> {
  const dir = resolve(cwd, command.out);
  const material = generateKeyMaterial({ algorithm: command.algorithm, commonName: CERTIFICATE_COMMON_NAME });
  let written: { keyPath: string; certificatePath: string };
  try {
    written = await writeKeyMaterial(material, dir, { overwrite: command.force });
  } catch (error) {
    if (error instanceof KeyExistsError) throw new KeysError(`${error.path} already exists`, { hint: "pass --force to replace it (every site then needs the new key and certificate), or choose another --out", cause: error });
    if (error instanceof KeyUnreadableError) throw new KeysError(`cannot write ${error.path}: ${(error.cause as Error | undefined)?.message ?? error.message}`, { cause: error });
    throw error;
  }
  const result = { key_file: written.keyPath, certificate_file: written.certificatePath, algorithm: material.algorithm, key_id: material.keyId };
  if (out.settings.json) {
    printJson(out, result);
    return EXIT_CODES.ok;
  }
  out.stdout.write(
    [
      `private key  ${result.key_file}  (${result.algorithm}, mode 0600: copy it to every site, REGISTRY_TOKEN_KEY_FILE)`,
      `certificate  ${result.certificate_file}  (every registry's auth.token.rootcertbundle, REGISTRY_TOKEN_CERT_FILE)`,
      `key id       ${result.key_id}`,
    ].join("\n") + "\n",
  );
  return EXIT_CODES.ok;
}
