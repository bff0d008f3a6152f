// A minimal CRI (Kubernetes Container Runtime Interface, runtime.v1) client: what the kubelet
// does to run a pod, over containerd's gRPC socket, with no dependency (Debian 12 has no
// crictl). gRPC is HTTP/2 with length-prefixed protobuf messages; the few messages needed are
// encoded and decoded here by field number (k8s.io/cri-api pkg/apis/runtime/v1/api.proto).
import http2 from "node:http2";
import net from "node:net";

// ---- protobuf, just enough ------------------------------------------------------------------

/** A field value: string/Buffer (length-delimited; a Buffer is an encoded message), number/boolean (varint), or a list (repeated). */
export type PbValue = string | Buffer | number | boolean | undefined | PbValue[];

function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n; // two's complement, as protobuf int64
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

/** Encode a message from [field number, value] pairs (proto3: zero values are left out). */
export function pb(...fields: Array<[number, PbValue]>): Buffer {
  const parts: Buffer[] = [];
  const put = (no: number, v: PbValue): void => {
    if (v === undefined || v === false || v === 0) return;
    if (Array.isArray(v)) {
      for (const x of v) put(no, x);
    } else if (typeof v === "string" || Buffer.isBuffer(v)) {
      const bytes = typeof v === "string" ? Buffer.from(v, "utf8") : v;
      parts.push(varint((no << 3) | 2), varint(bytes.length), bytes);
    } else {
      parts.push(varint(no << 3), varint(v === true ? 1 : v));
    }
  };
  for (const [no, v] of fields) put(no, v);
  return Buffer.concat(parts);
}

/** Decode one message level: field number -> its values (Buffer for length-delimited, bigint for varints). */
export function unpb(buf: Buffer): Map<number, Array<Buffer | bigint>> {
  const out = new Map<number, Array<Buffer | bigint>>();
  let i = 0;
  const readVarint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error("protobuf: truncated varint");
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(readVarint());
    const no = key >> 3;
    const wire = key & 7;
    let value: Buffer | bigint;
    if (wire === 0) value = readVarint();
    else if (wire === 2) {
      const len = Number(readVarint());
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) {
      value = buf.readBigUInt64LE(i);
      i += 8;
    } else if (wire === 5) {
      value = BigInt(buf.readUInt32LE(i));
      i += 4;
    } else throw new Error(`protobuf: wire type ${wire}`);
    const list = out.get(no) ?? [];
    list.push(value);
    out.set(no, list);
  }
  return out;
}

export const pbString = (m: Map<number, Array<Buffer | bigint>>, no: number): string => {
  const v = m.get(no)?.[0];
  return Buffer.isBuffer(v) ? v.toString("utf8") : "";
};
export const pbInt = (m: Map<number, Array<Buffer | bigint>>, no: number): number => {
  const v = m.get(no)?.[0];
  return typeof v === "bigint" ? Number(BigInt.asIntN(64, v)) : 0;
};
export const pbMessage = (m: Map<number, Array<Buffer | bigint>>, no: number) => {
  const v = m.get(no)?.[0];
  return unpb(Buffer.isBuffer(v) ? v : Buffer.alloc(0));
};

// ---- gRPC over a unix socket ----------------------------------------------------------------

export class GrpcError extends Error {
  constructor(readonly status: number, message: string) {
    super(`grpc status ${status}: ${message}`);
  }
}

/** One unary gRPC call; resolves with the response message, rejects with GrpcError. */
export function grpcCall(socket: string, method: string, request: Buffer, timeoutMs = 60_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const client = http2.connect("http://localhost", { createConnection: () => net.connect(socket) });
    let settled = false;
    const done = (err: Error | undefined, value?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.close();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => done(new Error(`${method}: no answer in ${timeoutMs} ms`)), timeoutMs);
    client.on("error", (e) => done(e));
    const req = client.request({ ":method": "POST", ":path": method, "content-type": "application/grpc", te: "trailers" });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = "";
    const takeStatus = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) {
        status = String(h["grpc-status"]);
        message = decodeURIComponent(String(h["grpc-message"] ?? ""));
      }
    };
    req.on("response", takeStatus); // a trailers-only answer (an error) has it in the headers
    req.on("trailers", takeStatus);
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", (e) => done(e));
    req.on("end", () => {
      if (status !== "0") return done(new GrpcError(Number(status ?? -1), message || "no grpc-status"));
      const body = Buffer.concat(chunks);
      if (body.length < 5) return done(undefined, Buffer.alloc(0));
      done(undefined, body.subarray(5, 5 + body.readUInt32BE(1)));
    });
    const header = Buffer.alloc(5);
    header.writeUInt32BE(request.length, 1);
    req.end(Buffer.concat([header, request]));
  });
}

// ---- the CRI calls a kubelet makes for a simple pod -----------------------------------------

const RUNTIME = "/runtime.v1.RuntimeService/";
export const NamespaceMode = { POD: 0, CONTAINER: 1, NODE: 2 } as const;
export const ContainerState = ["CREATED", "RUNNING", "EXITED", "UNKNOWN"] as const;

export interface PodSpec {
  name: string;
  uid: string;
  namespace: string;
  logDirectory: string;
  cgroupParent: string;
  /** The pod's network namespace: NODE needs no CNI. */
  network: number;
}

export function podSandboxConfig(p: PodSpec): Buffer {
  const metadata = pb([1, p.name], [2, p.uid], [3, p.namespace]);
  const nsOptions = pb([1, p.network], [2, NamespaceMode.CONTAINER]);
  const linux = pb([1, p.cgroupParent], [2, pb([1, nsOptions])]);
  return pb([1, metadata], [3, p.logDirectory], [8, linux]);
}

export interface ContainerSpec {
  name: string;
  image: string;
  command: string[];
  logPath: string;
  memoryLimit?: number;
  readonlyRootfs?: boolean;
  runAsUser?: number;
}

export class CriClient {
  constructor(readonly socket: string) {}

  async version(): Promise<string> {
    const r = unpb(await grpcCall(this.socket, `${RUNTIME}Version`, pb([1, "v1"])));
    return `${pbString(r, 2)} ${pbString(r, 3)} (${pbString(r, 4)})`;
  }

  async runPodSandbox(config: Buffer, runtimeHandler: string): Promise<string> {
    return pbString(unpb(await grpcCall(this.socket, `${RUNTIME}RunPodSandbox`, pb([1, config], [2, runtimeHandler]))), 1);
  }

  async stopPodSandbox(id: string): Promise<void> {
    await grpcCall(this.socket, `${RUNTIME}StopPodSandbox`, pb([1, id]));
  }

  async removePodSandbox(id: string): Promise<void> {
    await grpcCall(this.socket, `${RUNTIME}RemovePodSandbox`, pb([1, id]));
  }

  async createContainer(podId: string, c: ContainerSpec, sandboxConfig: Buffer): Promise<string> {
    const resources = c.memoryLimit ? pb([4, c.memoryLimit]) : undefined;
    const security = pb(...(c.runAsUser !== undefined ? [[5, pb([1, c.runAsUser])] as [number, PbValue]] : []), [7, c.readonlyRootfs === true]);
    const linux = pb([1, resources], [2, security]);
    const config = pb([1, pb([1, c.name])], [2, pb([1, c.image])], [3, c.command], [11, c.logPath], [15, linux]);
    return pbString(unpb(await grpcCall(this.socket, `${RUNTIME}CreateContainer`, pb([1, podId], [2, config], [3, sandboxConfig]))), 1);
  }

  async startContainer(id: string): Promise<void> {
    await grpcCall(this.socket, `${RUNTIME}StartContainer`, pb([1, id]));
  }

  async stopContainer(id: string, timeoutSeconds: number): Promise<void> {
    await grpcCall(this.socket, `${RUNTIME}StopContainer`, pb([1, id], [2, timeoutSeconds]));
  }

  async removeContainer(id: string): Promise<void> {
    await grpcCall(this.socket, `${RUNTIME}RemoveContainer`, pb([1, id]));
  }

  async containerStatus(id: string): Promise<{ state: string; exitCode: number; reason: string; message: string }> {
    const status = pbMessage(unpb(await grpcCall(this.socket, `${RUNTIME}ContainerStatus`, pb([1, id]))), 1);
    return { state: ContainerState[pbInt(status, 3)] ?? "?", exitCode: pbInt(status, 7), reason: pbString(status, 10), message: pbString(status, 11) };
  }

  /** UpdateContainerResources with a new memory limit (LinuxContainerResources.memory_limit_in_bytes). */
  async updateMemoryLimit(id: string, bytes: number): Promise<void> {
    await grpcCall(this.socket, `${RUNTIME}UpdateContainerResources`, pb([1, id], [2, pb([4, bytes])]));
  }

  async execSync(id: string, cmd: string[], timeoutSeconds = 30): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    const r = unpb(await grpcCall(this.socket, `${RUNTIME}ExecSync`, pb([1, id], [2, cmd], [3, timeoutSeconds])));
    return { stdout: pbString(r, 1), stderr: pbString(r, 2), exitCode: pbInt(r, 3) };
  }
}
