/**
 * Keys of a config.json that runtime-spec 1.3.0 does not define. The spec says a runtime MUST
 * ignore them, so they never fail anything; `tsrun check` lists them as warnings, with the
 * nearest key the schema has at that place ("memory.limt": did you mean "limit"?), because a
 * misspelled key is a setting silently not applied.
 *
 * Only objects with a fixed set of keys are looked at: the keys of maps (annotations, sysctl,
 * unified, rdma, netDevices, timeOffsets) are the config's own, and extension keys there are
 * allowed.
 */
import type { Problem } from "../errors.ts";
import { CONFIG_KEYS, type KeyNode } from "./generated/schema-keys.ts";
import { jsonPath } from "./validate.ts";

/** Keys the spec (or an earlier version of it) defines elsewhere: said what they are instead of "unknown". */
const KNOWN_ELSEWHERE: Record<string, string> = {
  windows: "is runtime-spec's section for Windows: ignored on Linux",
  solaris: "is runtime-spec's section for Solaris: ignored on Linux",
  vm: "is runtime-spec's section for virtual-machine runtimes: ignored by tsrun",
  zos: "is runtime-spec's section for z/OS: ignored on Linux",
  freebsd: "is runtime-spec's section for FreeBSD: ignored on Linux",
  "linux.intelRdt.enableCMT": "is runtime-spec 1.1's (1.3.0 replaced it with enableMonitoring): applied as enableMonitoring",
  "linux.intelRdt.enableMBM": "is runtime-spec 1.1's (1.3.0 replaced it with enableMonitoring): applied as enableMonitoring",
};

/** Optimal string alignment distance (edits, and swaps of two neighbours), case-insensitive. */
function distance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) => [i, ...Array<number>(t.length).fill(0)]);
  for (let j = 1; j <= t.length; j++) d[0]![j] = j;
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[s.length]![t.length]!;
}

/**
 * The known key an unknown one most likely meant: within a third of its length in edits, or one
 * of them a prefix of the other ("enviroment" -> "env"); undefined when nothing is close.
 */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: { k: string; score: number } | undefined;
  const lower = key.toLowerCase();
  for (const k of known) {
    const d = distance(key, k);
    const kl = k.toLowerCase();
    const prefix = Math.min(k.length, key.length) >= 3 && (lower.startsWith(kl) || kl.startsWith(lower));
    if (d > Math.max(1, Math.floor(key.length / 3)) && !prefix) continue;
    const score = prefix ? Math.min(d, Math.abs(k.length - key.length)) : d;
    if (!best || score < best.score) best = { k, score };
  }
  return best?.k;
}

function walk(node: KeyNode, data: unknown, path: (string | number)[], out: Problem[]): void {
  if (Array.isArray(data)) {
    if (node.items) data.forEach((x, i) => walk(node.items!, x, [...path, i], out));
    return;
  }
  if (data === null || typeof data !== "object") return;
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    const child = node.keys?.[k];
    if (child) walk(child, v, [...path, k], out);
    else if (node.values) walk(node.values, v, [...path, k], out);
    else if (node.keys) {
      const at = [...path, k];
      const elsewhere = KNOWN_ELSEWHERE[jsonPath(at)];
      const near = elsewhere ? undefined : nearestKey(k, Object.keys(node.keys));
      out.push({
        path: jsonPath(at),
        message: elsewhere ?? `is not a key of runtime-spec 1.3.0 and is ignored${near ? `: did you mean ${JSON.stringify(near)}?` : ""}`,
      });
    }
  }
}

/** Every key of a parsed config.json that runtime-spec 1.3.0 does not define where it is, each a warning. */
export function unknownKeys(config: unknown): Problem[] {
  const out: Problem[] = [];
  walk(CONFIG_KEYS, config, [], out);
  return out;
}
