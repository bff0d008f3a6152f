import { features } from "../../linux/features.ts";
import { writeOut } from "../../log.ts";

export function run(): number {
  writeOut(JSON.stringify(features(), null, 2) + "\n");
  return 0;
}
