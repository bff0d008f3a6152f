import { features } from "../../linux/features.ts";
import { libseccompVersion } from "../../linux/helper-path.ts";
import { writeOut } from "../../log.ts";

export async function run(): Promise<number> {
  writeOut(JSON.stringify(features(await libseccompVersion()), null, 2) + "\n");
  return 0;
}
