// The bench bundle's config.json: the realistic runc-like config the tests start from
// (tests/lib/runc-like-config.ts, which depends on no test harness).
//
// Two differences, both so that the same file serves runc, crun and tsrun unchanged:
// - ociVersion is "1.0.2": crun 1.8.1 refuses "1.3.0" ("unknown version specified").
// - the tag in the environment is TSRUN_BENCH_TAG, which the leak check looks for in
//   /proc/*/environ (a container process still alive after its delete is a leak).

import { runcLikeConfig } from "../tests/lib/runc-like-config.ts";

export const BENCH_TAG_ENV = "TSRUN_BENCH_TAG";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function benchConfig(rootfs: string, args: string[], tag: string): Record<string, any> {
  return runcLikeConfig({ ociVersion: "1.0.2", rootfs, args, hostname: "tsrun-bench", env: [`${BENCH_TAG_ENV}=${tag}`], term: true });
}
