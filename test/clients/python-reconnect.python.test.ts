// stageward_client's reconnect against live servers (the fake model, in this process): replica A
// drains with a step in flight, replica B comes up on A's port, and the Python RewardClient
// (test/clients/scripts/native_reconnect.py) must fail the step, reconnect to B, refuse to continue
// the lost episode and start a new one on B. Python needs numpy, msgpack and websockets; without
// them this test FAILS, saying so (as python-client.python.test.ts does).

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/paths.ts';
import type { StagewardServer } from '../../server/server.ts';
import { FakeProgressModel, startTestServer, waitFor } from '../server/helpers.ts';
import { CLIENT_DIR, findClientPython } from './python.ts';

const servers: StagewardServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.shutdown()));
});

describe('Python client reconnect against live servers', () => {
  it('a drain mid-episode: the in-flight step fails, the client reconnects to the next replica, the episode is lost until reset()', async () => {
    const python = findClientPython();
    const fakeA = new FakeProgressModel();
    const a = await startTestServer({ 'limits.shutdownGraceMs': 20 }, fakeA);
    servers.push(a);
    const port = a.address.port;

    const child = spawn(python, [join(REPO_ROOT, 'test', 'clients', 'scripts', 'native_reconnect.py'), a.url], {
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONPATH: CLIENT_DIR, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<any> => {
      const r = await lines.next();
      if (r.done) throw new Error(`the script ended early: ${stderr}`);
      return JSON.parse(r.value);
    };
    try {
      expect(await next()).toEqual({ event: 'stepped' });
      fakeA.delayMs = 300; // the next step is still in the model when the grace ends
      child.stdin.write('go\n');
      expect(await next()).toEqual({ event: 'pending' });
      await waitFor(() => a.stats().inFlight === 1);
      await a.shutdown();
      const fakeB = new FakeProgressModel();
      const b = await startTestServer({ port }, fakeB);
      servers.push(b);
      child.stdin.write('go\n');
      const out = await next();

      expect(out.first_step).toMatchObject({ type: 'reward', step: 0 });
      expect(out.pending_error).toMatchObject({ code: 'SW_ERR_SHUTTING_DOWN' });
      expect(out.reconnects).toBe(1);
      expect(out.readies).toHaveLength(1);
      expect(out.readies[0]).toMatchObject({ type: 'ready', model: out.first_ready.model });
      expect(out.ready_is_latest).toBe(true);
      expect(out.lost_step).toMatchObject({ code: 'SW_ERR_EPISODE_LOST', message: expect.stringContaining('reset()') });
      expect(out.lost_end).toMatchObject({ code: 'SW_ERR_EPISODE_LOST' });
      expect(out.episode.type).toBe('episode');
      expect(out.steps.map((r: any) => r.step)).toEqual([0, 1]);
      expect(out.steps[0].shaped).toBe(0);
      expect(out.summary).toMatchObject({ type: 'summary', steps: 2, success: true });
      // B saw one session: the re-sent hello, then only the new episode's two steps.
      expect(b.metrics.connections.get({ endpoint: 'native' })).toBe(1);
      expect(fakeB.calls.filter((c) => c.graph === 'sarm').reduce((n, c) => n + c.rows, 0)).toBe(2);
    } finally {
      child.kill();
    }
  });
});
