import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BATCHING } from '../../models/batching.ts';
import { DEFAULT_PREPROCESS_LIMITS, ENGINE_MAX_IMAGE_PIXELS } from '../../models/preprocess.ts';
import { ApiKeys } from '../../server/auth.ts';
import { envName, loadConfig } from '../../server/config.ts';
import { expectCode } from '../helpers.ts';
import { KEY } from './helpers.ts';

async function configFile(json: unknown): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'stageward-config-')), 'c.json');
  await writeFile(path, typeof json === 'string' ? json : JSON.stringify(json));
  return path;
}

describe('server configuration', () => {
  it('configs/default.json gives one default per limit, each with its unit in the name', () => {
    const c = loadConfig();
    expect(c.host).toBe('127.0.0.1');
    expect(c.limits).toMatchObject({ maxPayloadBytes: 16 * 1024 * 1024, maxSessions: 64, maxInFlightSteps: 8, idleTimeoutMs: 60_000 });
    expect(c.batching).toEqual({ maxBatch: 32, maxBatchWaitMs: 0, maxConcurrentBatches: 1 });
    expect(c.openpi.views).toEqual({ 'observation/image': 'front', 'observation/side_image': 'side', 'observation/wrist_image': 'wrist' });
  });

  it('the engine takes its batching defaults from the same file; its image limit is the looser library one', () => {
    const c = loadConfig();
    expect({ ...DEFAULT_BATCHING }).toEqual(c.batching);
    // The server's per-request wire limit (2048 x 2048) sits under the engine's library default (4096 x 4096).
    expect(c.limits.maxImagePixels).toBe(2048 * 2048);
    expect(DEFAULT_PREPROCESS_LIMITS.maxImagePixels).toBe(ENGINE_MAX_IMAGE_PIXELS);
    expect(ENGINE_MAX_IMAGE_PIXELS).toBe(4096 * 4096);
  });

  it('file < env < flags, each overriding the one before', async () => {
    const file = await configFile({ port: 9001, limits: { maxSessions: 3 }, batching: { maxBatchWaitMs: 2 } });
    const env = {
      STAGEWARD_PORT: '9002',
      STAGEWARD_MAX_BATCH_WAIT_MS: '0.5',
      STAGEWARD_API_KEYS: `${KEY}, other-key-0123456789`,
      STAGEWARD_OPENPI_TASK: 'pick_place',
    };
    const c = loadConfig({ file, env, flags: { port: 9003 } });
    expect(c.port).toBe(9003);
    expect(c.limits.maxSessions).toBe(3);
    expect(c.batching.maxBatchWaitMs).toBe(0.5);
    expect(c.apiKeys).toEqual([KEY, 'other-key-0123456789']);
    expect(c.openpi.task).toBe('pick_place');
    expect(envName('limits.maxPayloadBytes')).toBe('STAGEWARD_MAX_PAYLOAD_BYTES');
    expect(envName('openpi.gamma')).toBe('STAGEWARD_OPENPI_GAMMA');
  });

  it('errors name the field and where its value came from', async () => {
    await expectCode(
      () => loadConfig({ env: { STAGEWARD_MAX_SESSIONS: 'lots' } }),
      'SW_ERR_CONFIG',
      '`limits.maxSessions` (env STAGEWARD_MAX_SESSIONS) must be an integer',
    );
    await expectCode(
      async () => loadConfig({ file: await configFile({ limits: { maxPayloadBytes: 10 } }) }),
      'SW_ERR_CONFIG',
      '`limits.maxPayloadBytes` (config file',
    );
    await expectCode(
      async () => loadConfig({ file: await configFile({ limits: { maxSesions: 4 } }) }),
      'SW_ERR_CONFIG',
      '`limits.maxSesions`',
    );
    await expectCode(async () => loadConfig({ file: await configFile({ prot: 1 }) }), 'SW_ERR_CONFIG', '`prot`');
    await expectCode(async () => loadConfig({ file: await configFile('{ nope') }), 'SW_ERR_CONFIG', 'not valid JSON');
    await expectCode(() => loadConfig({ file: '/nonexistent/c.json' }), 'SW_ERR_CONFIG', 'cannot be read');
    await expectCode(
      () => loadConfig({ flags: { 'runtime.providers': ['tpu'] } }),
      'SW_ERR_CONFIG',
      '`runtime.providers` (flag --provider)',
    );
    await expectCode(() => loadConfig({ flags: { apiKeys: ['short'] } }), 'SW_ERR_CONFIG', 'at least 16 characters');
    await expectCode(
      () => loadConfig({ overrides: { 'limits.maxQueuedMessages': 2, 'limits.maxInFlightSteps': 4 } }),
      'SW_ERR_CONFIG',
      'maxQueuedMessages',
    );
    await expectCode(() => loadConfig({ overrides: { 'openpi.shaping': 'best' } }), 'SW_ERR_CONFIG', 'openpi.shaping');
  });

  it('without API keys it listens on loopback only, unless --insecure-public', async () => {
    await expectCode(() => loadConfig({ flags: { host: '0.0.0.0' } }), 'SW_ERR_CONFIG', 'not a loopback address');
    expect(loadConfig({ flags: { host: '0.0.0.0', apiKeys: [KEY] } }).host).toBe('0.0.0.0');
    expect(loadConfig({ flags: { host: '0.0.0.0', insecurePublic: true } }).insecurePublic).toBe(true);
    expect(loadConfig({ flags: { host: '::1' } }).host).toBe('::1');
    expect(loadConfig({ flags: { host: 'localhost' } }).host).toBe('localhost');
  });
});

describe('API keys', () => {
  it('accept a configured key from the header or as a value, and nothing else', () => {
    const keys = new ApiKeys([KEY, 'another-key-0123456789']);
    expect(keys.required).toBe(true);
    expect(keys.check(KEY)).toBe(true);
    expect(keys.check('another-key-0123456789')).toBe(true);
    expect(keys.check(`${KEY}x`)).toBe(false);
    expect(keys.check(undefined)).toBe(false);
    expect(keys.check(42)).toBe(false);
    expect(keys.fromHeaders({ authorization: `Api-Key ${KEY}` })).toBe('valid');
    expect(keys.fromHeaders({ authorization: 'Api-Key wrong-key-0123456789' })).toBe('invalid');
    expect(keys.fromHeaders({ authorization: `Bearer ${KEY}` })).toBe('invalid');
    expect(keys.fromHeaders({})).toBe('none');
    expect(new ApiKeys([]).required).toBe(false);
  });
});
