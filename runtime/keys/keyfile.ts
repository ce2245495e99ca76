// Cilium's IPsec key file (the `keys` entry of the cilium-ipsec-keys secret), parsed and checked
// before anything is installed. The grammar is Cilium's (pkg/datapath/linux/ipsec, LoadIPSecKeys):
//
//   spi[+] aead-algo  aead-key  icv-bits                 e.g. 3+ rfc4106(gcm(aes)) <40 hex> 128
//   spi[+] auth-algo  auth-key  enc-algo  enc-key  [ip]  e.g. 3 hmac(sha256) <hex> cbc(aes) <hex>
//
// - spi: the key ID, 1–15 (Cilium carries it in 4 mark bits). A trailing '+' asks for per-tunnel
//   (per node pair) keys derived from this global key.
// - aead-key: AES key ‖ 4-byte salt in hex, optionally 0x-prefixed: 20 bytes (AES-128) or 36 bytes
//   (AES-256). Cilium would also pass 28 bytes (AES-192) to the kernel; the engine has no AES-192.
// - icv-bits: RFC 4106 allows 64, 96 or 128. (Cilium accepts 256 too, which no GCM can produce.)
// - The auth+enc form is parsed, so its errors name the right field, then rejected: the engine
//   implements only AES-GCM.
// - A changed key must come with a newer SPI (Cilium: "changing IPSec keys requires incrementing
//   the key id"). Key IDs wrap 15 → 1 in Cilium's rotation procedure, so "newer" is serial-number
//   arithmetic modulo 15 (RFC 1982 style): a step of 1–7 forward is newer, anything else is a
//   rollback or ambiguous.
//
// Where this parser differs from Cilium, it is stricter except in two harmless ways: runs of
// spaces/tabs separate fields (Cilium splits on single spaces) and blank lines are skipped.
// Several lines are allowed as in Cilium; each must be newer than the one before and the last
// one is the key in force.
import { isIP } from 'node:net';
import { AEAD_GCM, type Algorithm, type IcvBits, Secret } from './sa.ts';

export const MAX_KEY_ID = 15;

/** One valid line: a global key. Per-node-pair keys are derived from it (derive.ts). */
export interface GlobalKey {
  spi: number;
  /** The line had Cilium's '+'. ebpf-ts derives per-node-pair keys either way (see derive.ts). */
  perNodePair: boolean;
  algorithm: Algorithm;
  key: Secret;
  salt: Secret;
  icvBits: IcvBits;
  /** 1-based line in the source, for messages. */
  line: number;
}

/** A malformed key file: always names the source, the line and the field. Never contains key bytes. */
export class KeyFileError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${source}:${line}: ${field}: ${reason}`);
    this.name = 'KeyFileError';
  }
}

const FIELD = {
  spi: 'field 1 (spi)',
  aeadAlgo: 'field 2 (aead-algo)',
  aeadKey: 'field 3 (aead-key)',
  icv: 'field 4 (icv-bits)',
  authAlgo: 'field 2 (auth-algo)',
  authKey: 'field 3 (auth-key)',
  encAlgo: 'field 4 (enc-algo)',
  encKey: 'field 5 (enc-key)',
  ip: 'field 6 (ip)',
} as const;

/**
 * Show a user's token in a message, unless it could be key material: a misplaced key (fields
 * swapped, SPI missing) must not end up in a log line, so hex runs are described, not shown.
 */
function quote(token: string): string {
  if (/^(0x)?[0-9a-fA-F]{12,}$/.test(token)) return `<${token.replace(/^0x/, '').length} hex digits>`;
  const shown = token.length > 24 ? `${token.slice(0, 24)}…` : token;
  return JSON.stringify(shown);
}

function parseSpi(token: string, fail: (field: string, reason: string) => never): { spi: number; plus: boolean } {
  const m = /^(\d+)(\+?)$/.exec(token);
  if (!m) {
    if (/^\d+\++$/.test(token)) fail(FIELD.spi, `${quote(token)} has more than one '+'`);
    fail(FIELD.spi, `${quote(token)} is not a key ID; expected a number 1–${MAX_KEY_ID}, optionally followed by '+'`);
  }
  const spi = Number(m[1]);
  if (spi === 0) fail(FIELD.spi, `0 is not a valid key ID; expected 1–${MAX_KEY_ID}`);
  if (spi > MAX_KEY_ID) fail(FIELD.spi, `${m[1]} is out of range; key IDs are 1–${MAX_KEY_ID} (key space exhausted: wrap to 1)`);
  return { spi, plus: m[2] === '+' };
}

/** Decode a hex key field. Messages give lengths and positions, never the digits themselves. */
function parseHexKey(token: string, field: string, fail: (field: string, reason: string) => never): Buffer {
  if (token === '""' || token === "''") fail(field, 'key is empty');
  const hex = token.startsWith('0x') || token.startsWith('0X') ? token.slice(2) : token;
  if (hex.length === 0) fail(field, 'key is empty');
  const bad = hex.search(/[^0-9a-fA-F]/);
  if (bad >= 0) fail(field, `not hex: character ${bad + 1} of the key is not a hex digit`);
  if (hex.length % 2 !== 0) fail(field, `odd number of hex digits (${hex.length})`);
  return Buffer.from(hex, 'hex');
}

const AUTH_ALGOS = new Set(['hmac(md5)', 'hmac(sha1)', 'hmac(sha256)', 'hmac(sha384)', 'hmac(sha512)', 'digest_null']);
const ENC_ALGOS = new Set(['cbc(aes)', 'cbc(des3_ede)', 'ctr(aes)', 'ecb(cipher_null)', 'cbc(cast5)', 'cbc(blowfish)']);

function parseLine(fields: string[], line: number, source: string): GlobalKey {
  const fail = (field: string, reason: string): never => {
    throw new KeyFileError(source, line, field, reason);
  };
  if (fields.length < 4) {
    fail(
      `${fields.length} field${fields.length === 1 ? '' : 's'}`,
      'too few fields; expected "spi[+] aead-algo aead-key icv-bits" or "spi[+] auth-algo auth-key enc-algo enc-key [ip]"',
    );
  }
  if (fields.length > 6) fail(`${fields.length} fields`, 'too many fields; at most 6 ("spi auth-algo auth-key enc-algo enc-key ip")');
  const { spi, plus } = parseSpi(fields[0], fail);

  if (fields.length === 4) {
    const [, algo, keyText, icvText] = fields;
    if (!algo.startsWith('rfc')) {
      fail(FIELD.aeadAlgo, `${quote(algo)} is not an AEAD algorithm (4 fields mean "spi aead-algo aead-key icv-bits"); expected ${AEAD_GCM}`);
    }
    if (algo !== AEAD_GCM) fail(FIELD.aeadAlgo, `${quote(algo)} is not supported; the engine implements only ${AEAD_GCM}`);
    const keySalt = parseHexKey(keyText, FIELD.aeadKey, fail);
    if (keySalt.length === 28) fail(FIELD.aeadKey, '28 bytes is AES-192 ‖ salt, which the engine does not implement; use 20 (AES-128) or 36 (AES-256)');
    if (keySalt.length !== 20 && keySalt.length !== 36) {
      fail(FIELD.aeadKey, `${keySalt.length} bytes; expected AES key ‖ 4-byte salt: 20 bytes (AES-128) or 36 bytes (AES-256)`);
    }
    if (keySalt.subarray(0, keySalt.length - 4).every((b) => b === 0)) fail(FIELD.aeadKey, 'the AES key is all zeros');
    if (!/^\d+$/.test(icvText)) fail(FIELD.icv, `${quote(icvText)} is not a number; expected 64, 96 or 128`);
    const icv = Number(icvText);
    if (icv === 256) fail(FIELD.icv, '256 is accepted by Cilium but RFC 4106 GCM tags are at most 128 bits; expected 64, 96 or 128');
    if (icv !== 64 && icv !== 96 && icv !== 128) fail(FIELD.icv, `${icv} is not a valid ICV length; expected 64, 96 or 128`);
    const key = new Secret(keySalt.subarray(0, keySalt.length - 4));
    const salt = new Secret(keySalt.subarray(keySalt.length - 4));
    keySalt.fill(0);
    return { spi, perNodePair: plus, algorithm: AEAD_GCM, key, salt, icvBits: icv as IcvBits, line };
  }

  // "spi auth-algo auth-key enc-algo enc-key [ip]": check it fully, then refuse it.
  const [, authAlgo, authKey, encAlgo, encKey, ip] = fields;
  if (authAlgo.startsWith('rfc')) fail(FIELD.authAlgo, `${quote(authAlgo)} is an AEAD algorithm; the AEAD form has exactly 4 fields "spi aead-algo aead-key icv-bits"`);
  if (!AUTH_ALGOS.has(authAlgo)) fail(FIELD.authAlgo, `${quote(authAlgo)} is not a known authentication algorithm (e.g. hmac(sha256))`);
  parseHexKey(authKey, FIELD.authKey, fail).fill(0);
  if (!ENC_ALGOS.has(encAlgo)) fail(FIELD.encAlgo, `${quote(encAlgo)} is not a known encryption algorithm (e.g. cbc(aes))`);
  parseHexKey(encKey, FIELD.encKey, fail).fill(0);
  if (ip !== undefined && isIP(ip) === 0) fail(FIELD.ip, `${quote(ip)} is not an IP address`);
  return fail(
    FIELD.authAlgo,
    `the auth+enc form (${authAlgo} + ${encAlgo}) is not supported; the engine implements only ${AEAD_GCM}, e.g. "${spi}+ ${AEAD_GCM} <40 hex digits> 128"`,
  );
}

/** Forward distance from key ID `from` to `to` on the 1..15 cycle. */
function keyIdStep(from: number, to: number): number {
  return (((to - from) % MAX_KEY_ID) + MAX_KEY_ID) % MAX_KEY_ID;
}

/** True if key ID `next` comes after `current` (1–7 steps forward, wrapping 15 → 1). */
export function isNewerKeyId(current: number, next: number): boolean {
  const step = keyIdStep(current, next);
  return step >= 1 && step <= 7;
}

/** The key ID after `spi` in Cilium's rotation order. */
export function nextKeyId(spi: number): number {
  return (spi % MAX_KEY_ID) + 1;
}

export function sameKey(a: GlobalKey, b: GlobalKey): boolean {
  return a.algorithm === b.algorithm && a.icvBits === b.icvBits && a.key.equals(b.key) && a.salt.equals(b.salt);
}

/**
 * Parse a whole key file. Throws KeyFileError on the first bad line; returns the keys in file order
 * (the last is the one in force). Nothing is installed here: callers install only after this and
 * `checkUpdate` both pass, so a bad file leaves the running keys in place.
 */
export function parseKeyFile(text: string, source = 'keys'): GlobalKey[] {
  if (text.includes('\0')) throw new KeyFileError(source, 1 + (text.slice(0, text.indexOf('\0')).match(/\n/g)?.length ?? 0), 'line', 'contains a NUL byte');
  const keys: GlobalKey[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    const bad = raw.search(/[^\x20-\x7e\t]/);
    if (bad >= 0) throw new KeyFileError(source, i + 1, `column ${bad + 1}`, 'non-printable or non-ASCII character');
    const fields = raw.trim().split(/[ \t]+/).filter((f) => f.length > 0);
    if (fields.length === 0) continue;
    const key = parseLine(fields, i + 1, source);
    const previous = keys.at(-1);
    if (previous) {
      if (previous.spi === key.spi && !sameKey(previous, key)) {
        throw new KeyFileError(source, key.line, FIELD.spi, `key ID ${key.spi} appears on line ${previous.line} with a different key; a changed key needs a higher key ID`);
      }
      if (previous.spi !== key.spi && !isNewerKeyId(previous.spi, key.spi)) {
        throw new KeyFileError(source, key.line, FIELD.spi, `key ID ${key.spi} is not newer than ${previous.spi} on line ${previous.line}; keys must be listed oldest first`);
      }
    }
    keys.push(key);
  }
  if (keys.length === 0) throw new KeyFileError(source, 1, 'file', 'no keys (the file is empty)');
  return keys;
}

/** What the runtime has installed, for checking an update against it. */
export interface InstalledKeys {
  /** The key in force: its key ID, and whether a parsed key is the same key. */
  current?: { spi: number; sameAs(key: GlobalKey): boolean };
  /** Key IDs of older keys still installed on ingress during their grace period. */
  retiring: number[];
}

export type UpdateVerdict = { kind: 'unchanged' } | { kind: 'rotate'; next: GlobalKey };

/**
 * Cilium's rule for a new file against the running key: the same key ID must keep the same key,
 * and a new key needs a newer key ID that is not still in use by a retiring key (its ingress SA
 * would be overwritten while the peers may still send with it).
 */
export function checkUpdate(installed: InstalledKeys, keys: GlobalKey[], source = 'keys'): UpdateVerdict {
  const next = keys.at(-1)!;
  const current = installed.current;
  if (!current) return { kind: 'rotate', next };
  if (next.spi === current.spi) {
    if (current.sameAs(next)) return { kind: 'unchanged' };
    throw new KeyFileError(source, next.line, FIELD.spi, `the key changed but the key ID stayed ${next.spi}; a new key needs a higher key ID (${nextKeyId(current.spi)})`);
  }
  if (!isNewerKeyId(current.spi, next.spi)) {
    throw new KeyFileError(source, next.line, FIELD.spi, `key ID ${next.spi} is not newer than the installed ${current.spi}; use ${nextKeyId(current.spi)} (IDs advance 1–7 steps, wrapping 15 → 1)`);
  }
  if (installed.retiring.includes(next.spi)) {
    throw new KeyFileError(source, next.line, FIELD.spi, `key ID ${next.spi} is still installed as a retiring key; wait for its grace period to end or use another ID`);
  }
  return { kind: 'rotate', next };
}
