// Renderer benchmark: renders per second per view of the 30-geom tabletop scene (sim/render/demo-scene.ts)
// on one core, for each camera, with the scene moving between frames as in an episode.
//
//   npx tsx bench/sim-render.ts
//   npx tsx bench/sim-render.ts --size 224 --frames 200 --supersample 2 --no-shadows
//
// Last output line: {"renders_per_s_per_view", "ms_per_view_p50", "ms_per_view_p99", "size", ...}

import { tabletopScene, type CubeStage } from '../sim/render/demo-scene.ts';
import { createRenderer } from '../sim/render/index.ts';
import { median, quantile } from '../core/stats.ts';

interface Options {
  width: number;
  height: number;
  frames: number;
  supersample: 1 | 2;
  shadows: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { width: 96, height: 96, frames: 400, supersample: 1, shadows: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): number => Number(argv[++i]);
    if (a === '--size') {
      opts.width = opts.height = next();
    } else if (a === '--width') opts.width = next();
    else if (a === '--height') opts.height = next();
    else if (a === '--frames') opts.frames = next();
    else if (a === '--supersample') opts.supersample = next() === 2 ? 2 : 1;
    else if (a === '--no-shadows') opts.shadows = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

const WARMUP_FRAMES = 50;
const opts = parseArgs(process.argv.slice(2));
const renderer = createRenderer({ supersample: opts.supersample, shadows: opts.shadows });
const stages: CubeStage[] = ['table', 'held', 'bowl'];
const views = ['front', 'side', 'wrist'];
const perView: Record<string, number[]> = Object.fromEntries(views.map((v) => [v, []]));
const all: number[] = [];
let checksum = 0;

for (let f = -WARMUP_FRAMES; f < opts.frames; f++) {
  const scene = tabletopScene(stages[((f % 3) + 3) % 3]!, f * 0.05);
  for (const view of views) {
    const t0 = process.hrtime.bigint();
    const img = renderer.render(scene, view, opts.width, opts.height);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    checksum = (checksum + img.data[img.data.length >> 1]!) % 65536;
    if (f < 0) continue;
    perView[view]!.push(ms);
    all.push(ms);
  }
}

console.log(
  `scene: ${tabletopScene().geoms.length} geoms, ${opts.width}x${opts.height}, supersample ${opts.supersample}, shadows ${opts.shadows}`,
);
for (const view of views) {
  const s = perView[view]!;
  console.log(
    `${view.padEnd(6)} ${(1000 / median(s)).toFixed(0).padStart(6)} renders/s  p50 ${median(s).toFixed(3)} ms  p99 ${quantile(s, 0.99).toFixed(3)} ms`,
  );
}
const p50 = median(all);
console.log(
  JSON.stringify({
    renders_per_s_per_view: Math.round(1000 / p50),
    ms_per_view_p50: Number(p50.toFixed(3)),
    ms_per_view_p99: Number(quantile(all, 0.99).toFixed(3)),
    size: `${opts.width}x${opts.height}`,
    supersample: opts.supersample,
    shadows: opts.shadows,
    geoms: tabletopScene().geoms.length,
    checksum,
  }),
);
