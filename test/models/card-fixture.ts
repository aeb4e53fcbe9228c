// A valid model card in model.json form, matching test/fixtures/tiny-model; tests mutate copies of it.

export function baseCardJson(): Record<string, unknown> {
  return {
    format: 1,
    name: 'tiny-fixture',
    version: '0.0.1',
    views: ['front', 'side', 'wrist'],
    image: { height: 64, width: 64, resize: 'stretch' },
    normalization: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    feature_dim: 32,
    window: { length: 5, stride_frames: 2, include_initial: true },
    fps: 10,
    tasks: ['pick_place', 'stack_three'],
    stages: {
      pick_place: [
        { name: 'reach', prior: 0.2 },
        { name: 'grasp', prior: 0.1 },
        { name: 'lift', prior: 0.2 },
        { name: 'carry', prior: 0.3 },
        { name: 'place', prior: 0.2 },
      ],
      stack_three: Array.from({ length: 7 }, (_, i) => ({ name: `s${i}`, prior: 1 / 7 })),
    },
    progress: { composition: 'argmax' },
    grm: { present: true, goal: 'client' },
    graphs: { encoder: 'encoder.onnx', sarm: 'sarm.onnx', grm: 'grm.onnx' },
    architecture: {},
    provenance: {},
    metrics: {},
  };
}
