// MuJoCo through its official WebAssembly build (mujoco-js): the module is loaded once (a lazy,
// cached promise), MJCF text goes in through the module's Emscripten file system, and `MujocoSim`
// owns one MjModel + MjData pair (freed with `delete()`), with name lookups and contact listing.
//
// mujoco-js hands out a fresh typed-array view of WASM memory on every field access
// (`data.qpos`, `model.geom_size`, ...): read a view, use it at once, never keep it across a call
// that may grow WASM memory (loading a model, making data).

import type { MainModule, MjData, MjModel } from 'mujoco-js';

export type Mujoco = MainModule;
export type { MjData, MjModel };

/** mjtObj values used by name lookups. */
export const MJ_OBJ = { body: 1, joint: 3, geom: 5, site: 6, camera: 7, light: 8, actuator: 19 } as const;
export type MjObjKind = keyof typeof MJ_OBJ;

let modulePromise: Promise<Mujoco> | null = null;

/** The MuJoCo WASM module, loaded on first use and shared by every simulation in the process. */
export function loadMujoco(): Promise<Mujoco> {
  if (!modulePromise) {
    // Imported on first use: the WebAssembly module costs ~160 MB of RSS, which commands that never
    // simulate (serve, eval, train) should not pay.
    modulePromise = import('mujoco-js')
      .then((m) => m.default())
      .catch((err: unknown) => {
        modulePromise = null;
        throw err;
      });
  }
  return modulePromise;
}

/** One touching pair of geoms (MuJoCo contact), by geom id. */
export interface GeomContact {
  geom1: number;
  geom2: number;
  /** Penetration distance in metres (negative when the geoms overlap). */
  dist: number;
}

const SCENE_DIR = '/stageward';
let sceneCounter = 0;

/** One MuJoCo model and its data; call `delete()` when done (WASM memory is not garbage collected). */
export class MujocoSim {
  readonly mj: Mujoco;
  readonly model: MjModel;
  readonly data: MjData;
  private deleted = false;

  private constructor(mj: Mujoco, model: MjModel, data: MjData) {
    this.mj = mj;
    this.model = model;
    this.data = data;
  }

  /** Parse MJCF text into a model and fresh data (positions at the model's qpos0, kinematics run). */
  static async fromXml(xml: string): Promise<MujocoSim> {
    return MujocoSim.fromXmlSync(await loadMujoco(), xml);
  }

  /** As `fromXml`, with the module already loaded. */
  static fromXmlSync(mj: Mujoco, xml: string): MujocoSim {
    const fs = mj.FS;
    if (!fs.analyzePath(SCENE_DIR, false).exists) fs.mkdir(SCENE_DIR);
    const path = `${SCENE_DIR}/scene-${sceneCounter++}.xml`;
    fs.writeFile(path, xml);
    let model: MjModel;
    try {
      model = mj.MjModel.loadFromXML(path);
    } catch (err) {
      throw new Error(`MuJoCo could not load the scene: ${describeWasmError(mj, err)}`, { cause: err });
    } finally {
      fs.unlink(path);
    }
    if (!model) throw new Error('MuJoCo could not load the scene (no model returned)');
    const data = new mj.MjData(model);
    const sim = new MujocoSim(mj, model, data);
    sim.forward();
    return sim;
  }

  /** Advance the physics by `n` timesteps. */
  step(n = 1): void {
    for (let i = 0; i < n; i++) this.mj.mj_step(this.model, this.data);
  }

  /** Recompute positions, contacts and sensors without advancing time. */
  forward(): void {
    this.mj.mj_forward(this.model, this.data);
  }

  get timestep(): number {
    return this.model.opt.timestep;
  }

  /** Id of a named element, or -1. */
  findId(kind: MjObjKind, name: string): number {
    return this.mj.mj_name2id(this.model, MJ_OBJ[kind], name);
  }

  /** Id of a named element; throws when the scene lacks it. */
  id(kind: MjObjKind, name: string): number {
    const id = this.findId(kind, name);
    if (id < 0) throw new Error(`the scene has no ${kind} named "${name}"`);
    return id;
  }

  /** Name of element `id` of a kind, read from the model's name table ('' when unnamed). */
  name(kind: 'camera' | 'light' | 'geom' | 'body', id: number): string {
    const adr = {
      camera: this.model.name_camadr,
      light: this.model.name_lightadr,
      geom: this.model.name_geomadr,
      body: this.model.name_bodyadr,
    }[kind] as Int32Array;
    const start = adr[id];
    if (start === undefined) return '';
    const names = this.model.names as Int8Array;
    let end = start;
    while (end < names.length && names[end] !== 0) end++;
    return new TextDecoder().decode(new Uint8Array(names.buffer, names.byteOffset + start, end - start));
  }

  /** The current contacts, by geom id. */
  contacts(): GeomContact[] {
    const n = this.data.ncon;
    const list = this.data.contact;
    const out: GeomContact[] = [];
    for (let i = 0; i < n; i++) {
      const c = list.get(i);
      if (!c) continue;
      out.push({ geom1: c.geom1, geom2: c.geom2, dist: c.dist });
      c.delete();
    }
    list.delete();
    return out;
  }

  /** World position of a body (xpos). */
  bodyPos(bodyId: number): [number, number, number] {
    const x = this.data.xpos as Float64Array;
    return [x[3 * bodyId]!, x[3 * bodyId + 1]!, x[3 * bodyId + 2]!];
  }

  /** Free up WASM memory; the instance is unusable afterwards. Safe to call twice. */
  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    this.data.delete();
    this.model.delete();
  }

  get isDeleted(): boolean {
    return this.deleted;
  }
}

function describeWasmError(mj: Mujoco, err: unknown): string {
  // Embind C++ exceptions (CppException) carry no message; the module can name them.
  const withMessage = mj as unknown as { getExceptionMessage?: (e: unknown) => [string, string] };
  if (typeof withMessage.getExceptionMessage === 'function') {
    try {
      return withMessage.getExceptionMessage(err).filter(Boolean).join(': ');
    } catch {
      /* not a C++ exception */
    }
  }
  return err instanceof Error && err.message ? err.message : String(err);
}
