export const VERSION = "0.1.0";
/** The OCI runtime-spec version this build implements. */
export const SPEC_VERSION = "1.3.0";

/** Set by the build (`bun build --define`, Makefile): the git commit the binary was built from. */
declare const TSRUN_COMMIT: string | undefined;
export const COMMIT = typeof TSRUN_COMMIT === "string" && TSRUN_COMMIT !== "" ? TSRUN_COMMIT : "unknown";
