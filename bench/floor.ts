// The floor of any Bun executable: built by bench/bench.ts exactly as build/tsrun is
// (the Makefile's BUN_COMPILE flags), it writes one line and exits. Timing it beside
// `tsrun --version` separates Bun's own start-up from tsrun's module loading.
import { writeSync } from "node:fs";

writeSync(1, "bun floor\n");
process.exit(0);
