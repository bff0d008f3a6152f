#!/usr/bin/env bun
// The tsrun executable's entry: `bun build --compile` turns this into build/tsrun.
import { main } from "../src/cli/main.ts";

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  () => process.exit(1),
);
