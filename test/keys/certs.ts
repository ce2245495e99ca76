// Real X.509 SVIDs for the SPIRE tests, made with the openssl CLI: an EC P-256 CA and EC P-256 leaf
// certificates with one URI SAN (spiffe://…), as the X509-SVID spec shapes them. DER out.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  dir: string;
  certDer: Buffer;
  issue(spiffeId: string, serial: number): { certDer: Buffer; keyDer: Buffer };
  dispose(): void;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeCa(trustDomain: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-ca-'));
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', `/O=${trustDomain} test CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', `subjectAltName=URI:spiffe://${trustDomain}`);
  openssl(dir, 'x509', '-in', 'ca.pem', '-outform', 'DER', '-out', 'ca.der');
  return {
    dir,
    certDer: readFileSync(join(dir, 'ca.der')),
    issue(spiffeId, serial) {
      const base = `leaf${serial}`;
      openssl(dir, 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', '/O=SPIRE');
      writeFileSync(join(dir, `${base}.ext`), `subjectAltName=URI:${spiffeId}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment,keyAgreement\n`);
      openssl(dir, 'x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial), '-days', '1', '-extfile', `${base}.ext`, '-outform', 'DER', '-out', `${base}.der`);
      openssl(dir, 'pkcs8', '-topk8', '-nocrypt', '-in', `${base}.key`, '-outform', 'DER', '-out', `${base}.p8`);
      return { certDer: readFileSync(join(dir, `${base}.der`)), keyDer: readFileSync(join(dir, `${base}.p8`)) };
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
