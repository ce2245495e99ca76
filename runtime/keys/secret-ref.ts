// Naming the Kubernetes Secret that holds the keys; kept apart from k8s.ts so the CLI can parse
// options without loading the Kubernetes client.
export const DEFAULT_SECRET = 'kube-system/cilium-ipsec-keys';

export interface SecretRef {
  namespace: string;
  name: string;
}

export function parseSecretRef(text: string): SecretRef {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(text);
  if (!m) throw new Error(`--secret: expected NAMESPACE/NAME (DNS-1123 names), got "${text}"`);
  return { namespace: m[1], name: m[3] };
}
