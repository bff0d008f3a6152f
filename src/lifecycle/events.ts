/**
 * events: runc's event stream for one container. With --stats, one stats event; otherwise a
 * stats event every interval and an "oom" event whenever the OOM killer struck, until the
 * container stops.
 */
import { TsrunError } from "../errors.ts";
import { stats, oomKillCount } from "../linux/cgroups/index.ts";
import { loadContainer } from "./status.ts";

export interface Event {
  type: "stats" | "oom";
  id: string;
  data?: unknown;
}

/** Go durations as runc takes them: "5s", "100ms", "1m30s", "1.5h". */
export function parseDuration(text: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m; (m = re.exec(text)); matched = re.lastIndex) total += Number(m[1]) * unit[m[2]!]!;
  if (text === "" || matched !== text.length || total <= 0) throw new TsrunError(`invalid --interval "${text}": want a duration such as 5s or 500ms`);
  return total;
}

function statsEvent(root: string, id: string): { event: Event; running: boolean; oomKills: number } {
  const { record, status } = loadContainer(root, id);
  if (status === "stopped" || !record.cgroup) throw new TsrunError("container not running");
  return { event: { type: "stats", id, data: stats(record.cgroup) }, running: true, oomKills: oomKillCount(record.cgroup) };
}

export async function streamEvents(root: string, id: string, opts: { once: boolean; intervalMs: number }, emit: (e: Event) => void): Promise<void> {
  const first = statsEvent(root, id);
  emit(first.event);
  if (opts.once) return;
  let oomKills = first.oomKills;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs));
    let next: ReturnType<typeof statsEvent>;
    try {
      next = statsEvent(root, id);
    } catch (err) {
      if (err instanceof TsrunError && err.message === "container not running") return;
      throw err;
    }
    if (next.oomKills > oomKills) emit({ type: "oom", id });
    oomKills = next.oomKills;
    emit(next.event);
  }
}
