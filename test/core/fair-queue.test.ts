import { describe, expect, it } from 'vitest';
import { FairQueue } from '../../core/fair-queue.ts';

/** A job that records when it starts and finishes only when released. */
function gate() {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return { done, release };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('FairQueue', () => {
  it('serves a tenant with small jobs before the large jobs another tenant queued earlier', async () => {
    const q = new FairQueue({ slots: 1, largeSlots: 1, largeCost: 1000 });
    const started: string[] = [];
    const gates = new Map<string, ReturnType<typeof gate>>();
    const job = (tenant: string, name: string, cost: number) => {
      const g = gate();
      gates.set(name, g);
      return q.run(tenant, cost, async () => {
        started.push(name);
        await g.done;
      });
    };
    const all = [job('big', 'b1', 3_000_000), job('big', 'b2', 3_000_000), job('big', 'b3', 3_000_000)];
    await tick();
    all.push(job('small', 's1', 5000), job('small', 's2', 5000));
    for (const name of ['b1', 's1', 's2', 'b2', 'b3']) {
      await tick();
      gates.get(name)!.release();
    }
    await Promise.all(all);
    expect(started).toEqual(['b1', 's1', 's2', 'b2', 'b3']);
  });

  it('alternates between tenants with equal costs, whatever order they queued in', async () => {
    const q = new FairQueue({ slots: 1, largeSlots: 1, largeCost: 1e9 });
    const started: string[] = [];
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(q.run('a', 10, async () => void started.push(`a${i}`)));
    for (let i = 0; i < 3; i++) jobs.push(q.run('b', 10, async () => void started.push(`b${i}`)));
    await Promise.all(jobs);
    // b queued while a0 ran: b0's start tag equals a0's, so the two tenants take turns from the first job.
    expect(started).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  });

  it('runs at most `slots` jobs, at most `largeSlots` of them large, so a small job never waits behind large ones', async () => {
    const q = new FairQueue({ slots: 2, largeSlots: 1, largeCost: 1000 });
    let running = 0;
    let runningLarge = 0;
    let peak = 0;
    let peakLarge = 0;
    const gates: ReturnType<typeof gate>[] = [];
    const job = (tenant: string, cost: number) => {
      const g = gate();
      gates.push(g);
      return q.run(tenant, cost, async () => {
        running++;
        if (cost >= 1000) runningLarge++;
        peak = Math.max(peak, running);
        peakLarge = Math.max(peakLarge, runningLarge);
        await g.done;
        running--;
        if (cost >= 1000) runningLarge--;
      });
    };
    const jobs = [job('x', 5000), job('y', 5000), job('z', 5000)];
    await tick();
    expect(q.running).toBe(1); // one large job; the other two large ones wait
    expect(q.waiting).toBe(2);
    let smallDone = false;
    jobs.push(job('s', 10).then(() => void (smallDone = true)));
    await tick();
    expect(q.running).toBe(2); // the small one took the free slot at once
    gates[3]!.release();
    await tick();
    await tick();
    expect(smallDone).toBe(true);
    for (const g of gates) g.release();
    while (q.running + q.waiting > 0) {
      await tick();
      for (const g of gates) g.release();
    }
    await Promise.all(jobs);
    expect(peak).toBeLessThanOrEqual(2);
    expect(peakLarge).toBe(1);
  });

  it('passes results and errors through, and a job that throws does not hold its slot', async () => {
    const q = new FairQueue({ slots: 1, largeSlots: 1, largeCost: 100 });
    await expect(
      q.run('a', 1, () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(q.run('a', 1, async () => Promise.reject(new Error('async')))).rejects.toThrow('async');
    expect(await q.run('b', 1, async () => 42)).toBe(42);
    expect(q.running).toBe(0);
  });

  it('holds large jobs to largeShare of the time while small jobs are about, and not when they are alone', async () => {
    const busy = (ms: number) => async () => {
      const t0 = performance.now();
      while (performance.now() - t0 < ms);
    };
    const gapBetweenLarge = async (withSmall: boolean) => {
      const q = new FairQueue({ slots: 2, largeSlots: 1, largeCost: 100, largeShare: 0.25 });
      if (withSmall) await q.run('robot', 1, async () => {});
      const starts: number[] = [];
      const job = () => q.run('cam', 1000, async () => (starts.push(performance.now()), busy(20)()));
      await Promise.all([job(), job()]);
      return starts[1]! - starts[0]!;
    };
    // 20 ms of work at a quarter share: 60 ms without a large job before the next.
    expect(await gapBetweenLarge(true)).toBeGreaterThanOrEqual(75);
    expect(await gapBetweenLarge(false)).toBeLessThan(60);
    expect(() => new FairQueue({ slots: 2, largeSlots: 1, largeCost: 1, largeShare: 0 })).toThrow(RangeError);
  });

  it('refuses options that could starve every job', () => {
    expect(() => new FairQueue({ slots: 0, largeSlots: 1, largeCost: 1 })).toThrow(RangeError);
    expect(() => new FairQueue({ slots: 2, largeSlots: 0, largeCost: 1 })).toThrow(RangeError);
    expect(() => new FairQueue({ slots: 2, largeSlots: 3, largeCost: 1 })).toThrow(RangeError);
    expect(() => new FairQueue({ slots: 2, largeSlots: 1, largeCost: 0 })).toThrow(RangeError);
  });
});
