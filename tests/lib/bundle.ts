// OCI bundles for tests: a temp dir with a realistic runc-like config.json.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { realDir, removeAtTeardown, type TestLike } from "./context.ts";
import { copyRootfs, sharedRootfs } from "./rootfs.ts";
import { TAG_ENV, TEST_TAG } from "./tsrun.ts";
import { runcLikeConfig, type ConfigObject } from "./runc-like-config.ts";

export { DEFAULT_CAPS, type ConfigObject } from "./runc-like-config.ts";

export interface BundleOptions {
  /** Mutate the base config before it is written. */
  config?: (c: ConfigObject) => void;
  /** process.args; default ["/bin/true"]. */
  args?: string[];
  /**
   * Give the bundle a private writable copy of the rootfs (BUNDLE/rootfs, root.path "rootfs",
   * readonly false). Default: root.path is the shared rootfs, read-only.
   */
  copyRootfs?: boolean;
  /** Where the bundle dir is made; default os.tmpdir(). */
  parent?: string;
}

export interface Bundle {
  dir: string;
  configPath: string;
  /** The config as written; change it and call writeConfig(bundle) to rewrite config.json. */
  config: ConfigObject;
}

/**
 * The base config of every test bundle (tests/lib/runc-like-config.ts), with ociVersion 1.3.0
 * and TSRUN_TEST_TAG in the environment (how the leak checker recognises this file's
 * containers; tests that compare the whole environment should expect it).
 */
export function baseConfig(args: string[] = ["/bin/true"]): ConfigObject {
  return runcLikeConfig({ ociVersion: "1.3.0", rootfs: sharedRootfs(), args, hostname: "tsrun-test", env: [`${TAG_ENV}=${TEST_TAG}`], term: true });
}

/**
 * A fresh bundle dir under os.tmpdir() ("tsrun-test-XXXXXX") with config.json written from
 * baseConfig(opts.args) after opts.config. Removed when t ends (after leakCheck looked).
 */
export function makeBundle(t: TestLike, opts: BundleOptions = {}): Bundle {
  const dir = realDir(fs.mkdtempSync(path.join(opts.parent ?? os.tmpdir(), "tsrun-test-")));
  removeAtTeardown(t, dir, "bundle");
  // Traversable by the ids a user-namespaced container maps root to.
  fs.chmodSync(dir, 0o711);
  const config = baseConfig(opts.args);
  if (opts.copyRootfs) {
    copyRootfs(path.join(dir, "rootfs"));
    config.root = { path: "rootfs", readonly: false };
  }
  opts.config?.(config);
  const bundle = { dir, configPath: path.join(dir, "config.json"), config };
  writeConfig(bundle);
  return bundle;
}

/** (Re)write bundle.config to bundle.configPath. */
export function writeConfig(bundle: Bundle): void {
  fs.writeFileSync(bundle.configPath, JSON.stringify(bundle.config, null, 2) + "\n");
}
