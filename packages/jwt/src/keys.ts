/**
 * Signing keys: loading PEM files, the libtrust key ID that Distribution uses
 * to find a trusted key, and generating a key with a self-signed certificate
 * for the registries' `rootcertbundle`.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as der from "./der.js";
import {
  CertificateInvalidError,
  CertificateMismatchError,
  KeyExistsError,
  KeyInvalidError,
  KeyUnreadableError,
  KeyUnsupportedError,
} from "./errors.js";

/** JWS algorithms a signing key can use; both are accepted by CNCF Distribution's token auth. */
export const SIGNING_ALGORITHMS = {
  RS256: "RS256",
  ES256: "ES256",
} as const;

/** One of {@link SIGNING_ALGORITHMS}. */
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[keyof typeof SIGNING_ALGORITHMS];

/** RSA modulus length of generated RS256 keys. */
export const DEFAULT_RSA_MODULUS_LENGTH = 2048;
/** Validity of generated certificates, in days (Distribution does not check it for `kid` tokens, but x5c chains are). */
export const DEFAULT_CERTIFICATE_VALIDITY_DAYS = 3650;
/** File names `writeKeyMaterial` uses. */
export const KEY_FILE_NAMES = { key: "key.pem", certificate: "cert.pem" } as const;

/** A private key ready to sign registry tokens, with what the token header needs. */
export interface SigningKey {
  /** JWS algorithm the key signs with. */
  readonly algorithm: SigningAlgorithm;
  /** libtrust key ID of the public key (the JWT header `kid`). */
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** DER of the certificate, when one was given (for the optional `x5c` header). */
  readonly certificateDer: Buffer | undefined;
}

/** A freshly generated key and its self-signed certificate. */
export interface KeyMaterial {
  readonly algorithm: SigningAlgorithm;
  /** libtrust key ID of the public key. */
  readonly keyId: string;
  /** PKCS#8 private key PEM. */
  readonly privateKeyPem: string;
  /** Self-signed X.509 v3 certificate PEM, for Distribution's `auth.token.rootcertbundle`. */
  readonly certificatePem: string;
}

/** Options of {@link generateKeyMaterial}. */
export interface GenerateKeyMaterialOptions {
  readonly algorithm: SigningAlgorithm;
  /** Subject and issuer common name of the certificate, e.g. `georep token signer`. */
  readonly commonName: string;
  /** Default {@link DEFAULT_CERTIFICATE_VALIDITY_DAYS}. */
  readonly validityDays?: number;
  /** RSA only; default {@link DEFAULT_RSA_MODULUS_LENGTH}. */
  readonly rsaModulusLength?: number;
  /** Start of validity; default now minus 5 minutes (clock skew). */
  readonly notBefore?: Date;
}

/**
 * libtrust key ID of a public key: SHA-256 of the DER SubjectPublicKeyInfo,
 * first 240 bits, base32 without padding, `:` every 4 characters (12 groups).
 * Distribution indexes the keys of its `rootcertbundle` by exactly this string.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const spki = publicKey.export({ type: "spki", format: "der" });
  const digest = createHash("sha256").update(spki).digest().subarray(0, 30);
  const encoded = base32(digest);
  return encoded.match(/.{1,4}/g)?.join(":") ?? encoded;
}

const BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32, no padding. */
function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** Which algorithm a key signs with, or a clear refusal. */
function algorithmOf(key: KeyObject): SigningAlgorithm {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  if (type === "rsa") {
    if ((details?.modulusLength ?? 0) < 2048) {
      throw new KeyUnsupportedError(`RSA key of ${details?.modulusLength ?? "?"} bits is too small; use at least 2048`);
    }
    return SIGNING_ALGORITHMS.RS256;
  }
  if (type === "ec") {
    if (details?.namedCurve !== "prime256v1") {
      throw new KeyUnsupportedError(`EC key on curve ${details?.namedCurve ?? "?"} is not supported; ES256 needs P-256 (prime256v1)`);
    }
    return SIGNING_ALGORITHMS.ES256;
  }
  throw new KeyUnsupportedError(`${type ?? "unknown"} keys are not supported; use an RSA (RS256) or EC P-256 (ES256) key`);
}

/**
 * Builds a signing key from PEM text (PKCS#8, PKCS#1 or SEC1 private key;
 * optional certificate whose public key must match).
 * @throws {KeyInvalidError | KeyUnsupportedError | CertificateInvalidError | CertificateMismatchError}
 */
export function signingKeyFromPem(options: { privateKeyPem: string | Buffer; certificatePem?: string | Buffer; keyPath?: string; certificatePath?: string }): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(options.privateKeyPem);
  } catch (cause) {
    throw new KeyInvalidError("not a PEM private key (expected PKCS#8, PKCS#1 RSA or SEC1 EC)", {
      ...(options.keyPath === undefined ? {} : { path: options.keyPath }),
      cause,
    });
  }
  const algorithm = algorithmOf(privateKey);
  const publicKey = createPublicKey(privateKey);
  let certificateDer: Buffer | undefined;
  if (options.certificatePem !== undefined) {
    const where = options.certificatePath ?? "certificate";
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(options.certificatePem);
    } catch (cause) {
      throw new CertificateInvalidError(`${where}: not a PEM X.509 certificate`, { cause });
    }
    const certSpki = certificate.publicKey.export({ type: "spki", format: "der" });
    const keySpki = publicKey.export({ type: "spki", format: "der" });
    if (!certSpki.equals(keySpki)) {
      throw new CertificateMismatchError(`${where} does not hold the public key of the signing key`);
    }
    certificateDer = certificate.raw;
  }
  return { algorithm, keyId: libtrustKeyId(publicKey), privateKey, publicKey, certificateDer };
}

async function readKeyFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new KeyUnreadableError(path, cause);
  }
}

/**
 * Loads a signing key from a PEM file, and optionally the certificate that
 * the registries trust (checked to match; used for the `x5c` header).
 * @throws {KeyUnreadableError} when a file cannot be read, and the errors of {@link signingKeyFromPem}.
 */
export async function loadSigningKey(options: { keyPath: string; certificatePath?: string }): Promise<SigningKey> {
  const privateKeyPem = await readKeyFile(options.keyPath);
  const certificatePem = options.certificatePath === undefined ? undefined : await readKeyFile(options.certificatePath);
  return signingKeyFromPem({
    privateKeyPem,
    keyPath: options.keyPath,
    ...(certificatePem === undefined ? {} : { certificatePem, certificatePath: options.certificatePath }),
  });
}

const OID = {
  commonName: "2.5.4.3",
  sha256WithRSAEncryption: "1.2.840.113549.1.1.11",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
} as const;

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? der.sequence(der.oid(id), der.boolean(true), der.octetString(value)) : der.sequence(der.oid(id), der.octetString(value));
}

/**
 * Builds and signs a minimal self-signed X.509 v3 certificate (RFC 5280 §4.1):
 * CA basic constraints, digitalSignature + keyCertSign key usage, subject and
 * authority key identifiers. Returns DER.
 */
function selfSignedCertificate(options: { privateKey: KeyObject; publicKey: KeyObject; algorithm: SigningAlgorithm; commonName: string; notBefore: Date; notAfter: Date }): Buffer {
  const signatureAlgorithm =
    options.algorithm === SIGNING_ALGORITHMS.RS256
      ? der.sequence(der.oid(OID.sha256WithRSAEncryption), der.nullValue())
      : der.sequence(der.oid(OID.ecdsaWithSHA256));
  const name = der.sequence(der.set(der.sequence(der.oid(OID.commonName), der.utf8String(options.commonName))));
  const spki = options.publicKey.export({ type: "spki", format: "der" });
  // RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value; hashing the whole SPKI is also accepted, and simpler.
  const keyIdentifier = createHash("sha1").update(spki).digest();
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01; // positive and non-zero, 16 bytes
  const extensions = der.sequence(
    extension(OID.basicConstraints, true, der.sequence(der.boolean(true))),
    // digitalSignature (bit 0) + keyCertSign (bit 5): 0b10000100, the last 2 bits unused.
    extension(OID.keyUsage, true, der.bitString(Buffer.from([0x84]), 2)),
    extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier)),
    extension(OID.authorityKeyIdentifier, false, der.sequence(der.tlv(0x80, keyIdentifier))),
  );
  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)), // v3
    der.unsignedInteger(serial),
    signatureAlgorithm,
    name,
    der.sequence(der.time(options.notBefore), der.time(options.notAfter)),
    name,
    spki,
    der.explicit(3, extensions),
  );
  // node:crypto signs RSA with PKCS#1 v1.5 and ECDSA as a DER Ecdsa-Sig-Value, as X.509 wants.
  const signature = sign("sha256", tbs, options.privateKey);
  return der.sequence(tbs, signatureAlgorithm, der.bitString(signature));
}

function toPem(label: string, derBytes: Buffer): string {
  const lines = derBytes.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * Generates a signing key and a self-signed certificate for it. Copy the key
 * to every site (the sites share it) and put the certificate in each
 * registry's `auth.token.rootcertbundle`.
 */
export function generateKeyMaterial(options: GenerateKeyMaterialOptions): KeyMaterial {
  const validityDays = options.validityDays ?? DEFAULT_CERTIFICATE_VALIDITY_DAYS;
  if (!(validityDays > 0)) throw new KeyUnsupportedError(`validityDays must be positive, got ${validityDays}`);
  if (options.commonName.trim() === "") throw new KeyUnsupportedError("commonName must not be empty");
  const { privateKey, publicKey } =
    options.algorithm === SIGNING_ALGORITHMS.RS256
      ? generateKeyPairSync("rsa", { modulusLength: options.rsaModulusLength ?? DEFAULT_RSA_MODULUS_LENGTH })
      : generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const algorithm = algorithmOf(privateKey);
  const notBefore = options.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(notBefore.getTime() + validityDays * 86_400_000);
  const certificate = selfSignedCertificate({ privateKey, publicKey, algorithm, commonName: options.commonName, notBefore, notAfter });
  return {
    algorithm,
    keyId: libtrustKeyId(publicKey),
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    certificatePem: toPem("CERTIFICATE", certificate),
  };
}

/** Where {@link writeKeyMaterial} put the files. */
export interface WrittenKeyMaterial {
  readonly keyPath: string;
  readonly certificatePath: string;
}

/**
 * Writes `key.pem` (mode 0600) and `cert.pem` (0644) into `dir`, creating it.
 * Refuses to overwrite existing files unless `overwrite` is set, so a second
 * run cannot silently invalidate every site's tokens.
 * @throws {KeyExistsError | KeyUnreadableError}
 */
export async function writeKeyMaterial(material: KeyMaterial, dir: string, options: { overwrite?: boolean } = {}): Promise<WrittenKeyMaterial> {
  const keyPath = join(dir, KEY_FILE_NAMES.key);
  const certificatePath = join(dir, KEY_FILE_NAMES.certificate);
  const flag = options.overwrite === true ? "w" : "wx";
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new KeyUnreadableError(dir, cause);
  }
  const write = async (path: string, data: string, mode: number) => {
    try {
      await writeFile(path, data, { flag, mode });
      await chmod(path, mode); // writeFile's mode only applies to new files
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === "EEXIST") throw new KeyExistsError(path, cause);
      throw new KeyUnreadableError(path, cause);
    }
  };
  await write(keyPath, material.privateKeyPem, 0o600);
  await write(certificatePath, material.certificatePem, 0o644);
  return { keyPath, certificatePath };
}
