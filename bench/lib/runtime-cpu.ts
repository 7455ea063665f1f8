/**
 * CPU time of the runtime processes behind a local Worker, read from `/proc` (Linux only).
 *
 * The local runtime runs a Worker, its local D1 and its local queues on one thread, so when that
 * thread is busy the whole time, a run lasts as long as its CPU time: CPU per delivery is then the
 * figure to compare, and the one a deployment pays for. Elsewhere than Linux every reading is
 * `undefined` and the figures show "n/a".
 */
import { readdirSync, readFileSync } from "node:fs";

/** `/proc` counts in clock ticks of 1/100 s on every Linux ABI (USER_HZ). */
const MS_PER_TICK = 10;

export interface RuntimeCpu {
  /** The runtime's processes: those this process started while `start` ran. */
  pids: readonly number[];
  /** CPU time (user and system, all threads) those processes used so far, in ms. */
  readMs(): number | undefined;
}

/**
 * Runs `start`, which starts a local Worker, and returns what it started with a reader of the CPU
 * time of the runtime processes that appeared meanwhile. Start one Worker at a time.
 */
export async function withRuntimeCpu<T>(
  start: () => Promise<T>,
): Promise<{ started: T; cpu: RuntimeCpu }> {
  const before = runtimeChildren();
  const started = await start();
  const pids = [...runtimeChildren()].filter((pid) => !before.has(pid));
  return {
    started,
    cpu: {
      pids,
      readMs() {
        if (pids.length === 0) return undefined;
        let ticks = 0;
        for (const pid of pids) {
          const used = cpuTicks(pid);
          if (used === undefined) return undefined;
          ticks += used;
        }
        return ticks * MS_PER_TICK;
      },
    },
  };
}

/**
 * Runs `work`, then waits `settleMs` for what it left running (a consumer's last batch reports
 * after its requests arrive), and returns its result with the runtime's CPU time over both.
 */
export async function withCpuTime<T>(
  cpu: RuntimeCpu,
  work: () => Promise<T>,
  settleMs: number,
): Promise<{ result: T; cpuMs: number | undefined }> {
  const before = cpu.readMs();
  const result = await work();
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const after = cpu.readMs();
  return {
    result,
    cpuMs: before === undefined || after === undefined ? undefined : after - before,
  };
}

/** This process's children that run the `workerd` runtime; empty where `/proc` is unreadable. */
function runtimeChildren(): Set<number> {
  const pids = new Set<number>();
  try {
    for (const task of readdirSync("/proc/self/task")) {
      const children = readFileSync(`/proc/self/task/${task}/children`, "utf8").trim();
      for (const pid of children.split(/\s+/).filter(Boolean).map(Number)) {
        if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "workerd") pids.add(pid);
      }
    }
  } catch {
    return new Set();
  }
  return pids;
}

/** utime + stime of a process, all its threads included (fields 14 and 15 of `stat`). */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is parenthesised and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}
