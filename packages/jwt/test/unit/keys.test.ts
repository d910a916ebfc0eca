import { execFileSync } from "node:child_process";
import { X509Certificate, createHash, createPublicKey } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CertificateMismatchError,
  KeyExistsError,
  KeyInvalidError,
  KeyUnreadableError,
  generateKeyMaterial,
  libtrustKeyId,
  loadSigningKey,
  writeKeyMaterial,
} from "../../src/index.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "georep-jwt-"));
  dirs.push(dir);
  return dir;
}

describe("libtrustKeyId", () => {
  it("is base32 of the first 240 bits of sha256(SPKI), 12 groups of 4", () => {
    const material = generateKeyMaterial({ algorithm: "ES256", commonName: "t" });
    const key = createPublicKey(material.certificatePem);
    const id = libtrustKeyId(key);
    expect(id).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    // Independent check: decode the base32 back and compare with the digest prefix.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const bits = [...id.replaceAll(":", "")].map((c) => alphabet.indexOf(c).toString(2).padStart(5, "0")).join("");
    const bytes = Buffer.from(bits.match(/.{8}/g)!.map((b) => Number.parseInt(b, 2)));
    const digest = createHash("sha256").update(key.export({ type: "spki", format: "der" })).digest().subarray(0, 30);
    expect(bytes.equals(digest)).toBe(true);
    expect(material.keyId).toBe(id);
  });
});

describe("generateKeyMaterial", () => {
  it.each(["ES256", "RS256"] as const)("makes a %s key and a self-signed v3 CA certificate that Node and openssl parse", async (algorithm) => {
    const material = generateKeyMaterial({ algorithm, commonName: "georep test signer" });
    const cert = new X509Certificate(material.certificatePem);
    expect(cert.subject).toBe("CN=georep test signer");
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(await loadKeyObject(material.privateKeyPem))).toBe(true);
    if (existsSync("/usr/bin/openssl")) {
      const dir = await tempDir();
      await writeFile(join(dir, "cert.pem"), material.certificatePem);
      const text = execFileSync("openssl", ["x509", "-noout", "-text", "-in", join(dir, "cert.pem")], { encoding: "utf8" });
      expect(text).toContain("Version: 3 (0x2)");
      expect(text).toContain(algorithm === "ES256" ? "ecdsa-with-SHA256" : "sha256WithRSAEncryption");
      expect(text).toContain("CA:TRUE");
      const verify = execFileSync("openssl", ["verify", "-CAfile", join(dir, "cert.pem"), join(dir, "cert.pem")], { encoding: "utf8" });
      expect(verify).toContain("OK");
    }
  });

  it("writes key.pem 0600 and cert.pem, and refuses to overwrite", async () => {
    const dir = await tempDir();
    const material = generateKeyMaterial({ algorithm: "ES256", commonName: "t" });
    const written = await writeKeyMaterial(material, join(dir, "keys"));
    expect((await stat(written.keyPath)).mode & 0o777).toBe(0o600);
    const key = await loadSigningKey({ keyPath: written.keyPath, certificatePath: written.certificatePath });
    expect(key.algorithm).toBe("ES256");
    expect(key.keyId).toBe(material.keyId);
    await expect(writeKeyMaterial(material, join(dir, "keys"))).rejects.toBeInstanceOf(KeyExistsError);
  });
});

describe("loadSigningKey", () => {
  it("reports a missing file with JWT_ERR_KEY_UNREADABLE", async () => {
    const error: unknown = await loadSigningKey({ keyPath: "/nonexistent/key.pem" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyUnreadableError);
    expect((error as KeyUnreadableError).code).toBe("JWT_ERR_KEY_UNREADABLE");
    expect((error as Error).message).toContain("/nonexistent/key.pem");
  });

  it("reports garbage and mismatched certificates", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "bad.pem"), "not a key");
    await expect(loadSigningKey({ keyPath: join(dir, "bad.pem") })).rejects.toBeInstanceOf(KeyInvalidError);
    const a = await writeKeyMaterial(generateKeyMaterial({ algorithm: "ES256", commonName: "a" }), join(dir, "a"));
    const b = await writeKeyMaterial(generateKeyMaterial({ algorithm: "ES256", commonName: "b" }), join(dir, "b"));
    await expect(loadSigningKey({ keyPath: a.keyPath, certificatePath: b.certificatePath })).rejects.toBeInstanceOf(CertificateMismatchError);
  });
});

async function loadKeyObject(pem: string) {
  const { createPrivateKey } = await import("node:crypto");
  return createPrivateKey(pem);
}
