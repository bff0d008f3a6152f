import t from "tap";
import { parseArgs, type OptionSpec } from "../../src/cli/args.ts";
import { TsrunError } from "../../src/errors.ts";

const options: OptionSpec[] = [
  { name: "bundle", short: "b", type: "string", description: "" },
  { name: "detach", short: "d", type: "boolean", description: "" },
  { name: "env", short: "e", type: "strings", description: "" },
];
const interspersed = { stopAtFirstOperand: false, context: "x" };
const passthrough = { stopAtFirstOperand: true, context: "x" };

t.test("Go flag forms: --name value, --name=value, -name, short", async (t) => {
  t.same(parseArgs(["--bundle", "/b", "id"], options, interspersed), { values: { bundle: "/b" }, operands: ["id"] });
  t.same(parseArgs(["--bundle=/b", "id"], options, interspersed).values, { bundle: "/b" });
  t.same(parseArgs(["-bundle", "/b"], options, interspersed).values, { bundle: "/b" });
  t.same(parseArgs(["-b", "/b", "-d"], options, interspersed).values, { bundle: "/b", detach: true });
  t.same(parseArgs(["--detach=false"], options, interspersed).values, { detach: false });
  t.same(parseArgs(["-e", "A=1", "--env", "B=2"], options, interspersed).values, { env: ["A=1", "B=2"] });
});

t.test("flags after operands are parsed unless the command passes them through", async (t) => {
  t.same(parseArgs(["id", "--detach"], options, interspersed), { values: { detach: true }, operands: ["id"] });
  t.same(parseArgs(["id", "sh", "-c", "x"], options, passthrough), { values: {}, operands: ["id", "sh", "-c", "x"] });
  t.same(parseArgs(["--", "-weird"], options, interspersed).operands, ["-weird"]);
});

t.test("errors name the flag", async (t) => {
  t.throws(() => parseArgs(["--nope"], options, interspersed), new TsrunError("x: unknown flag: --nope"));
  t.throws(() => parseArgs(["--bundle"], options, interspersed), new TsrunError("x: flag --bundle needs a value"));
  t.throws(() => parseArgs(["--detach=maybe"], options, interspersed), /invalid boolean value "maybe"/);
});
