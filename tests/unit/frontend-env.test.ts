import t from "tap";
import { ADDED_ENV, takeFrontendEnv } from "../../src/cli/frontend-env.ts";

t.test("the engine options the front end added are taken out, the list with them", async (t) => {
  const env: NodeJS.ProcessEnv = { [ADDED_ENV]: "BUN_JSC_useJIT", BUN_JSC_useJIT: "0", PATH: "/bin" };
  takeFrontendEnv(env);
  t.same(env, { PATH: "/bin" });
});

t.test("without the list nothing is touched, a caller's own engine option included", async (t) => {
  const env: NodeJS.ProcessEnv = { BUN_JSC_useJIT: "1", PATH: "/bin" };
  takeFrontendEnv(env);
  t.same(env, { BUN_JSC_useJIT: "1", PATH: "/bin" });
});

t.test("a list naming anything but an engine option removes only the list", async (t) => {
  const env: NodeJS.ProcessEnv = { [ADDED_ENV]: "PATH,HOME", PATH: "/bin", HOME: "/root" };
  takeFrontendEnv(env);
  t.same(env, { PATH: "/bin", HOME: "/root" });
});
