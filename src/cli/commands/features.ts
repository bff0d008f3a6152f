import { features } from "../../linux/features.ts";

export function run(): number {
  process.stdout.write(JSON.stringify(features(), null, 2) + "\n");
  return 0;
}
