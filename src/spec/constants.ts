/** Small facts of the spec shared by validation, defaults and the bundle check (no imports: cheap to load). */

/** The runtime-spec version tsrun implements (written by `tsrun spec`); configs of any 1.x are accepted. */
export const OCI_VERSION = "1.3.0";

/** The hook lists of config.json, in lifecycle order. */
export const HOOK_NAMES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] as const;
export type HookName = (typeof HOOK_NAMES)[number];
