import { featuresText } from "../../linux/features.ts";
import { libseccompVersion } from "../../linux/helper-path.ts";
import { writeOut } from "../../log.ts";

export async function run(): Promise<number> {
  writeOut(featuresText(await libseccompVersion()));
  return 0;
}
