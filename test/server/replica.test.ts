// The replica identity a load balancer and its operator see: `ready.replica`, the openpi metadata,
// /healthz (also while draining) and `stageward_replica_info` in /metrics, from the config, an env
// var or the default `<hostname>-<pid>`; a name that would break a metric label is refused at start.
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, replicaName } from '../../server/config.ts';
import type { StagewardServer } from '../../server/server.ts';
import { expectCode } from '../helpers.ts';
import { FakeProgressModel, HELLO, jpegFrames, Peer, startTestServer, waitFor } from './helpers.ts';

let named: StagewardServer;
beforeAll(async () => {
  named = await startTestServer({ replica: 'edge-7.rack:2' });
});
afterAll(() => named.shutdown());

describe('replica identity', () => {
  it('is in the native ready, the openpi metadata, /healthz and /metrics', async () => {
    const native = await Peer.open(`${named.url}/v1/stream`);
    expect(await native.request(HELLO)).toMatchObject({ type: 'ready', replica: 'edge-7.rack:2' });
    native.ws.close();
    const openpi = await Peer.open(`${named.url}/openpi`);
    expect((await openpi.next()).data).toMatchObject({ server: 'stageward', replica: 'edge-7.rack:2' });
    openpi.ws.close();
    const http = named.url.replace('ws', 'http');
    expect(await (await fetch(`${http}/healthz`)).json()).toMatchObject({ status: 'ok', replica: 'edge-7.rack:2' });
    const text = await (await fetch(`${http}/metrics`)).text();
    expect(text).toMatch(/^stageward_replica_info\{replica="edge-7\.rack:2"\} 1$/m);
  });

  it('defaults to <hostname>-<pid>, which is what a server without the setting reports', async () => {
    expect(loadConfig().replica).toBeNull();
    expect(replicaName({ replica: null })).toBe(`${hostname()}-${process.pid}`);
    expect(replicaName({ replica: null }, 'pod name/with"odd', 42)).toBe('pod-name-with-odd-42');
    const plain = await startTestServer();
    try {
      expect(plain.replica).toBe(`${hostname()}-${process.pid}`);
      const peer = await Peer.open(`${plain.url}/v1/stream`);
      expect(await peer.request(HELLO)).toMatchObject({ replica: plain.replica });
      peer.ws.close();
    } finally {
      await plain.shutdown();
    }
  });

  it('comes from STAGEWARD_REPLICA or the --replica flag (the flag wins)', () => {
    expect(loadConfig({ env: { STAGEWARD_REPLICA: 'pod-a' } }).replica).toBe('pod-a');
    expect(loadConfig({ env: { STAGEWARD_REPLICA: 'pod-a' }, flags: { replica: 'pod-b' } }).replica).toBe('pod-b');
  });

  it('refuses a name that is not a safe label value, naming the setting and where it came from', async () => {
    for (const bad of ['a b', 'x"} 1\nstageward_fake 1', '-lead', 'r'.repeat(129)])
      await expectCode(async () => loadConfig({ env: { STAGEWARD_REPLICA: bad } }), 'SW_ERR_CONFIG', '`replica` (env STAGEWARD_REPLICA)');
    await expectCode(async () => loadConfig({ flags: { replica: '' } }), 'SW_ERR_CONFIG', '`replica` (flag --replica)');
  });

  it('stays in /healthz while the replica drains, with the 503', async () => {
    const fake = new FakeProgressModel();
    const draining = await startTestServer({ replica: 'going', 'limits.shutdownGraceMs': 2000 }, fake);
    const http = draining.url.replace('ws', 'http');
    const peer = await Peer.open(`${draining.url}/v1/stream`);
    await peer.request(HELLO);
    await peer.request({ type: 'reset' });
    fake.delayMs = 100; // a step in flight holds the drain open while /healthz is asked
    peer.send({ type: 'step', seq: 0, frames: await jpegFrames() });
    await waitFor(() => draining.stats().inFlight === 1);
    const done = draining.shutdown();
    const health = await fetch(`${http}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'shutting_down', replica: 'going' });
    expect(await peer.reply()).toMatchObject({ type: 'reward', seq: 0 });
    await done;
  });
});
