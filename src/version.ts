export const VERSION = "0.1.0";
/** The OCI runtime-spec version this build implements. */
export const SPEC_VERSION = "1.3.0";
