/**
 * The few calls the systemd driver makes to systemd's manager over D-Bus, on a direct connection
 * to the manager's private socket: /run/systemd/private for the system manager (root only),
 * $XDG_RUNTIME_DIR/systemd/private for a user's manager. No bus daemon is involved (and none
 * needs to run), and systemd sends job signals to its direct connections unasked.
 *
 * The client is @homebridge/dbus-native (docs/architecture.md says why that one), imported here
 * only, when a command works on a container of the systemd driver.
 */
import { connect as netConnect } from "node:net";
import { Duplex } from "node:stream";
import { TsrunError, errnoText } from "../../../errors.ts";
import { logDebug } from "../../../log.ts";
import type { UnitProperty } from "./properties.ts";

const DEST = "org.freedesktop.systemd1";
const MANAGER_PATH = "/org/freedesktop/systemd1";
const MANAGER = "org.freedesktop.systemd1.Manager";
const PROPERTIES = "org.freedesktop.DBus.Properties";
const SIGNAL = 4;
/** How long a call or a job may take before tsrun gives up (runc waits as long). */
const TIMEOUT_MS = 30_000;

interface NativeMessage {
  type: number;
  member?: string;
  body?: unknown[];
}

interface DbusError {
  name?: string;
  message?: string;
}

interface NativeBus {
  invoke(msg: Record<string, unknown>, cb: (err: DbusError | null | undefined, ...values: unknown[]) => void): void;
  connection: {
    on(event: "message", fn: (m: NativeMessage) => void): void;
    on(event: "error" | "end", fn: (e?: Error) => void): void;
    end(): void;
  };
}

interface NativeModule {
  createClient(opts: { stream: Duplex; direct: boolean; authMethods: string[] }): NativeBus;
}

/**
 * The connection to socketPath, sending the client's BEGIN right behind its AUTH line rather than
 * after the server's OK. systemd's private socket (sd-bus 252 as a server) leaves a message that
 * arrives in the same read as BEGIN unread until more bytes come, and the client sends its first
 * call right behind BEGIN: about half of all connections hung (measured here). sd-bus's own
 * clients pipeline BEGIN with AUTH; so does this, and the client's later BEGIN is dropped.
 */
function pipelinedAuthSocket(socketPath: string): Duplex {
  const sock = netConnect(socketPath);
  let authSent = false;
  let beginDropped = false;
  const stream = new Duplex({
    write(chunk: Buffer, _encoding, done) {
      if (!beginDropped) {
        const text = chunk.toString("latin1");
        if (!authSent && text.startsWith("AUTH ")) {
          authSent = true;
          sock.write(Buffer.concat([chunk, Buffer.from("BEGIN\r\n")]), done);
          return;
        }
        if (authSent && text === "BEGIN\r\n") {
          beginDropped = true;
          done();
          return;
        }
      }
      sock.write(chunk, done);
    },
    final(done) {
      sock.end();
      done();
    },
    read() {
      sock.resume();
    },
    destroy(err, done) {
      sock.destroy();
      done(err);
    },
  });
  sock.on("data", (chunk: Buffer) => {
    if (!stream.push(chunk)) sock.pause();
  });
  sock.on("end", () => stream.push(null));
  sock.on("error", (e) => stream.destroy(e));
  // The client asks for it; a unix socket has no Nagle to turn off.
  (stream as Duplex & { setNoDelay(): void }).setNoDelay = () => {};
  return stream;
}

/** The error systemd answers when the unit is not there (NoSuchUnit) or not loaded. */
export function isNoSuchUnit(e: unknown): boolean {
  return e instanceof SystemdCallError && /NoSuchUnit|LoadFailed|Unit\.NotLoaded/.test(e.dbusName);
}

export class SystemdCallError extends TsrunError {
  constructor(message: string, readonly dbusName: string) {
    super(message);
  }
}

/** The socket of the system manager, or of this user's manager. */
export function managerSocket(user: boolean): string {
  if (!user) return "/run/systemd/private";
  const dir = process.env.XDG_RUNTIME_DIR || `/run/user/${process.geteuid?.() ?? 0}`;
  return `${dir}/systemd/private`;
}

export class SystemdBus {
  private pending = new Set<(e: Error) => void>();
  private jobs = new Map<string, (result: string) => void>();
  private finished = new Map<string, string>();
  private broken: Error | undefined;

  private constructor(private readonly bus: NativeBus, readonly socket: string) {
    const fail = (e?: Error) => {
      this.broken ??= new TsrunError(`systemd: connection to ${socket} lost${e ? `: ${errnoText(e)}` : ""}`);
      for (const reject of this.pending) reject(this.broken);
      this.pending.clear();
    };
    bus.connection.on("error", fail);
    bus.connection.on("end", fail);
    bus.connection.on("message", (m) => {
      if (m.type !== SIGNAL || m.member !== "JobRemoved" || !Array.isArray(m.body)) return;
      const [, job, , result] = m.body as [number, string, string, string];
      const waiter = this.jobs.get(job);
      if (waiter) waiter(result);
      else this.finished.set(job, result);
    });
  }

  /** Connects (EXTERNAL authentication, as this process's uid). */
  static async connect(socket: string): Promise<SystemdBus> {
    const imported = (await import("@homebridge/dbus-native")) as unknown as NativeModule & { default?: NativeModule };
    const native = imported.default ?? imported;
    let bus: NativeBus;
    try {
      bus = native.createClient({ stream: pipelinedAuthSocket(socket), direct: true, authMethods: ["EXTERNAL"] });
    } catch (e) {
      throw new TsrunError(`systemd: cannot connect to ${socket}: ${errnoText(e)}`);
    }
    const client = new SystemdBus(bus, socket);
    // The first call says whether the connection works at all.
    try {
      await client.call(MANAGER_PATH, PROPERTIES, "Get", "ss", [MANAGER, "Version"]);
    } catch (e) {
      client.close();
      const why = e instanceof SystemdCallError ? e.message : errnoText(e);
      throw new TsrunError(`systemd: cannot talk to the manager at ${socket}: ${why.replace(/^systemd: connection to .* lost: /, "")}`);
    }
    return client;
  }

  close(): void {
    try {
      this.bus.connection.end();
    } catch {
      // already closed
    }
  }

  private call(path: string, iface: string, member: string, signature: string, body: unknown[]): Promise<unknown[]> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<unknown[]>((resolve, reject) => {
      const timer = setTimeout(() => finish(new TsrunError(`systemd: ${member}: no answer from ${this.socket} in ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
      const finish = (err: Error | undefined, values?: unknown[]) => {
        clearTimeout(timer);
        this.pending.delete(onLost);
        if (err) reject(err);
        else resolve(values ?? []);
      };
      const onLost = (e: Error) => finish(e);
      this.pending.add(onLost);
      this.bus.invoke({ destination: DEST, path, interface: iface, member, signature, body }, (err, ...values) => {
        if (err) {
          const name = err.name ?? "org.freedesktop.DBus.Error.Failed";
          finish(new SystemdCallError(`systemd: ${member}: ${err.message || name}`, name));
        } else finish(undefined, values);
      });
    });
  }

  private waitJob(job: string, what: string): Promise<string> {
    const done = this.finished.get(job);
    if (done !== undefined) {
      this.finished.delete(job);
      return Promise.resolve(done);
    }
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.jobs.delete(job);
        reject(new TsrunError(`systemd: ${what}: the job did not finish in ${TIMEOUT_MS / 1000} s`));
      }, TIMEOUT_MS);
      this.jobs.set(job, (result) => {
        clearTimeout(timer);
        this.jobs.delete(job);
        resolve(result);
      });
    });
  }

  /** StartTransientUnit, waiting for its job; resolves when the unit is active. */
  async startTransientUnit(unit: string, props: UnitProperty[]): Promise<void> {
    const [job] = (await this.call(MANAGER_PATH, MANAGER, "StartTransientUnit", "ssa(sv)a(sa(sv))", [unit, "fail", props, []])) as [string];
    const result = await this.waitJob(job, `start ${unit}`);
    logDebug(`systemd: start ${unit}: ${result}`);
    if (result !== "done") throw new TsrunError(`systemd: starting ${unit} failed (job result "${result}")`);
  }

  async setUnitProperties(unit: string, props: UnitProperty[]): Promise<void> {
    await this.call(MANAGER_PATH, MANAGER, "SetUnitProperties", "sba(sv)", [unit, true, props]);
  }

  /** StopUnit, waiting for its job. A unit that is not there is fine. */
  async stopUnit(unit: string): Promise<void> {
    let job: string;
    try {
      [job] = (await this.call(MANAGER_PATH, MANAGER, "StopUnit", "ss", [unit, "replace"])) as [string];
    } catch (e) {
      if (isNoSuchUnit(e)) return;
      throw e;
    }
    const result = await this.waitJob(job, `stop ${unit}`);
    logDebug(`systemd: stop ${unit}: ${result}`);
    if (result !== "done" && result !== "skipped") throw new TsrunError(`systemd: stopping ${unit} failed (job result "${result}")`);
  }

  /** KillUnit: signal to every process of the unit. A unit that is not there is fine. */
  async killUnit(unit: string, signal: number): Promise<void> {
    try {
      await this.call(MANAGER_PATH, MANAGER, "KillUnit", "ssi", [unit, "all", signal]);
    } catch (e) {
      if (!isNoSuchUnit(e) && !(e instanceof SystemdCallError && /NoSuchProcess/.test(e.dbusName))) throw e;
    }
  }

  /** ResetFailedUnit, so that a failed unit is removed too. A unit that is not there is fine. */
  async resetFailedUnit(unit: string): Promise<void> {
    try {
      await this.call(MANAGER_PATH, MANAGER, "ResetFailedUnit", "s", [unit]);
    } catch (e) {
      if (!isNoSuchUnit(e)) throw e;
    }
  }

  /** The unit's cgroup as systemd names it ("/system.slice/x.scope"), or undefined when it has none. */
  async unitControlGroup(unit: string, type: "Scope" | "Slice" = "Scope"): Promise<string | undefined> {
    const [path] = (await this.call(MANAGER_PATH, MANAGER, "GetUnit", "s", [unit])) as [string];
    const [variant] = await this.call(path, PROPERTIES, "Get", "ss", [`org.freedesktop.systemd1.${type}`, "ControlGroup"]);
    const value = (variant as [unknown, unknown[]] | undefined)?.[1]?.[0];
    return typeof value === "string" && value !== "" ? value : undefined;
  }

  /** A property of the manager itself ("ControlGroup", "Version"). */
  async managerProperty(name: string): Promise<unknown> {
    const [variant] = await this.call(MANAGER_PATH, PROPERTIES, "Get", "ss", [MANAGER, name]);
    return (variant as [unknown, unknown[]] | undefined)?.[1]?.[0];
  }
}
