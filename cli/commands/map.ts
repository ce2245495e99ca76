// `ebpf-ts map dump|lookup|update|delete NAME`: a loaded object's map, keys and values decoded
// through the BTF the kernel holds for it, as JSON. Keys and values are given as JSON too
// (numbers, objects by field name, byte arrays as hex strings).
import { join } from 'node:path';
import type { Command } from 'commander';
import { openPinnedMap, requireCapabilities, resolvePinDir, type Json, type MapHandle } from '../../runtime/loader/index.ts';
import { existsSync } from 'node:fs';
import { runCommand, UsageError } from '../errors.ts';

interface Where {
  object?: string;
  pinDir?: string;
}

function openMap(name: string, where: Where): MapHandle {
  const pinDir = resolvePinDir(where);
  const file = name.replace(/[^A-Za-z0-9_@-]/g, '_');
  for (const path of [join(pinDir, file), join(pinDir, 'maps', file)]) if (existsSync(path)) return openPinnedMap(path, name);
  throw new UsageError(`no map "${name}" loaded at ${pinDir}`, 1);
}

function parseJson(what: string, text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    // A bare word is a string ("0a0b", "0x10"): saves shell quoting of JSON strings.
    if (/^[\w.:-]+$/.test(text)) return text;
    throw new UsageError(`${what}: not JSON: ${text}`);
  }
}

const withMap = (name: string, where: Where, fn: (m: MapHandle) => void): void => {
  requireCapabilities('map', ['CAP_BPF']);
  const m = openMap(name, where);
  try {
    fn(m);
  } finally {
    m.close();
  }
};

export function register(program: Command): void {
  const map = program.command('map').description('read and write the maps of a loaded object');
  const common = (c: Command): Command => c.option('--object <name>', 'loaded object (default: the only one)').option('--pin-dir <dir>', 'pin directory of the loaded object');

  common(map.command('dump').argument('<name>', 'map name').description('every entry as JSON')).action((name: string, o: Where) =>
    runCommand(() =>
      withMap(name, o, (m) => {
        const entries = [...m.entries()].map(([k, v]) => ({ key: m.decodeKey(k), value: m.decodeValue(v) }));
        console.log(JSON.stringify(entries, null, 2));
      }),
    ),
  );
  common(map.command('lookup').argument('<name>', 'map name').argument('<key>', 'key as JSON')).action((name: string, key: string, o: Where) =>
    runCommand(() =>
      withMap(name, o, (m) => {
        const value = m.lookup(m.encodeKey(parseJson('key', key)));
        if (!value) throw new UsageError(`map ${name}: no entry for key ${key}`, 1);
        console.log(JSON.stringify(m.decodeValue(value), null, 2));
      }),
    ),
  );
  common(map.command('update').argument('<name>', 'map name').argument('<key>', 'key as JSON').argument('<value>', 'value as JSON')).action((name: string, key: string, value: string, o: Where) =>
    runCommand(() => withMap(name, o, (m) => m.update(m.encodeKey(parseJson('key', key)), m.encodeValue(parseJson('value', value))))),
  );
  common(map.command('delete').argument('<name>', 'map name').argument('<key>', 'key as JSON')).action((name: string, key: string, o: Where) =>
    runCommand(() =>
      withMap(name, o, (m) => {
        if (!m.delete(m.encodeKey(parseJson('key', key)))) throw new UsageError(`map ${name}: no entry for key ${key}`, 1);
      }),
    ),
  );
}
