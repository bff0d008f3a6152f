// Parsing /proc/PID/mountinfo lines as the checker reports them.

export interface Mount {
  id: number;
  parent: number;
  /** "major:minor" of the filesystem. */
  dev: string;
  /** Root of the mount within its filesystem. */
  root: string;
  mountPoint: string;
  /** Per-mount options: rw/ro, nosuid, nodev, noexec, relatime, ... */
  mountOptions: string[];
  /** Optional fields: shared:N, master:N, propagate_from:N, unbindable. */
  optional: string[];
  fsType: string;
  source: string;
  /** Superblock options. */
  superOptions: string[];
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(lines: unknown): Mount[] {
  if (!Array.isArray(lines)) return [];
  const out: Mount[] = [];
  for (const line of lines as string[]) {
    const f = line.split(" ");
    const sep = f.indexOf("-", 6);
    if (sep < 0) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      dev: f[2]!,
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      mountOptions: f[5]!.split(","),
      optional: f.slice(6, sep),
      fsType: f[sep + 1]!,
      source: unescape(f[sep + 2] ?? ""),
      superOptions: (f[sep + 3] ?? "").split(","),
    });
  }
  return out;
}

/** The mount visible at a mount point (the last one mounted there). */
export function mountAt(mounts: Mount[], mountPoint: string): Mount | undefined {
  return mounts.filter((m) => m.mountPoint === mountPoint).at(-1);
}
