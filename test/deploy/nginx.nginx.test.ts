// A real nginx with deploy/nginx.conf in front of stageward replicas (`npm run test:nginx`; needs
// nginx: apt-get install -y nginx, or NGINX_PATH). The short form of `npm run bench:scale`: 3 replica
// processes, 8 robots through nginx, one replica drained by SIGTERM mid-run.
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkShippedConf, findNginx, startNginx, type Nginx } from '../../bench/nginx.ts';
import { runScale } from '../../bench/scale.ts';
import { StagewardClient } from '../../server/client.ts';
import type { StagewardServer } from '../../server/server.ts';
import { expectCode } from '../helpers.ts';
import { jpegFrames, startTestServer } from '../server/helpers.ts';

describe('deploy/nginx.conf', () => {
  it('is valid for nginx as shipped', async () => {
    expect(await checkShippedConf(findNginx())).toBe('');
  });

  describe('in front of one replica', () => {
    let server: StagewardServer;
    let nginx: Nginx;
    beforeAll(async () => {
      server = await startTestServer({ replica: 'solo', 'limits.maxPayloadBytes': 4 * 1024 * 1024 });
      nginx = await startNginx([server.address.port]);
    });
    afterAll(async () => {
      await nginx?.stop();
      await server?.shutdown();
    });

    it('proxies /healthz and /metrics, naming the replica behind it', async () => {
      expect(await (await fetch(`${nginx.url}/healthz`)).json()).toMatchObject({ status: 'ok', replica: 'solo' });
      expect(await (await fetch(`${nginx.url}/metrics`)).text()).toContain('stageward_replica_info{replica="solo"} 1');
    });

    it('carries WebSocket messages far over its HTTP body limit, and the replica still enforces maxPayloadBytes', async () => {
      const client = await StagewardClient.connect(nginx.url.replace('http', 'ws'));
      expect((await client.hello({ task: 'pick_place', gamma: 0.99 })).replica).toBe('solo');
      await client.reset();
      // A 1024x1024 frame of noise: about 1 MiB of JPEG per view, 16x client_max_body_size.
      const noise = Buffer.alloc(1024 * 1024 * 3);
      for (let i = 0, x = 12345; i < noise.length; i++) noise[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      const big = await sharp(noise, { raw: { width: 1024, height: 1024, channels: 3 } })
        .jpeg({ quality: 95 })
        .toBuffer();
      expect(big.length).toBeGreaterThan(512 * 1024);
      const frames = { ...(await jpegFrames()), front: big };
      expect((await client.step(frames)).step).toBe(0);
      // Over the replica's 4 MiB: its 1009 close comes back through nginx.
      await expectCode(client.step({ front: big, side: big, wrist: Buffer.concat([big, big, big]) }), 'SW_ERR_CONNECTION_CLOSED', '1009');
      await client.close();
    });
  });

  it('spreads robots over 3 replicas; a drained replica sends its robots, via 1001 and nginx, to the others with nothing lost', async () => {
    const f = await runScale({ replicas: 3, robots: 8, hz: 10, durationS: 10, drainAtS: 4, single: false, log: () => {} });
    expect(f).toMatchObject({
      replicas: 3,
      robots: 8,
      lost_replies: 0,
      out_of_order: 0,
      summary_mismatches: 0,
      robots_failed: 0,
      other_errors: {},
      reconnects_to_drained: 0,
      // drainQuietMs: a step sent on the drain's last reply is answered (SW_ERR_SHUTTING_DOWN), never cut by the close.
      in_flight_at_close: 0,
      drained_exit_code: 0,
    });
    for (const [replica, sessions] of Object.entries(f.sessions_per_replica)) expect(sessions, replica).toBeGreaterThan(0);
    expect(f.drained_robots).toBeGreaterThan(0);
    expect(f.drained_robots_reconnected).toBe(f.drained_robots);
    expect(f.failover_reconnects).toBeGreaterThanOrEqual(f.drained_robots);
    // The drained replica's robots came back as new sessions on the other two.
    const others = Object.entries(f.sessions_per_replica).filter(([r]) => r !== f.drained_replica);
    expect(others.reduce((a, [, n]) => a + n, 0)).toBe(8 - f.drained_robots + f.failover_reconnects);
    expect(f.steps).toBeGreaterThan(8 * 10 * 10 * 0.5); // the fleet kept stepping through the failover
  });
});
