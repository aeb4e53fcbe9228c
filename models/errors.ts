// Errors are data: one class with a stable `code`. Every code stageward can raise is listed here,
// once, with what it means and the WebSocket close code it maps to (null: the session stays open).
// ERRORS.md at the repository root is the human-readable copy; a test keeps the two in step.

export const ERROR_CODES = {
  SW_ERR_MODEL_NOT_FOUND: { close: null, about: 'the model folder, its model.json or one of its graphs does not exist' },
  SW_ERR_MODEL_CARD: { close: null, about: 'model.json is not valid JSON or a field is missing, mistyped or inconsistent' },
  SW_ERR_MODEL_GRAPH: { close: null, about: "a graph's inputs or outputs (names, ranks, dtypes, sizes) disagree with the card" },
  SW_ERR_MODEL_LOAD: { close: null, about: 'ONNX Runtime could not open a graph on any execution provider' },
  SW_ERR_RUNTIME_CONFIG: { close: null, about: 'a runtime option (execution provider, thread count) is invalid' },
  SW_ERR_INFERENCE: { close: 1011, about: 'ONNX Runtime failed while running a graph' },
  SW_ERR_IMAGE_DECODE: { close: null, about: 'image bytes are not a readable JPEG or PNG' },
  SW_ERR_IMAGE_SIZE: { close: null, about: 'an image is empty, larger than the pixel limit, or its array shape does not match its bytes' },
  SW_ERR_VIEW_MISSING: { close: null, about: "a step lacks one of the model's camera views" },
  SW_ERR_VIEW_UNKNOWN: { close: null, about: "a step or goal names a camera view the model does not have" },
  SW_ERR_TASK_UNKNOWN: { close: null, about: 'the task is not one of the model card\'s tasks' },
  SW_ERR_BAD_OPTION: { close: null, about: 'an episode option (gamma, shaping, progress, scale) is out of range or unknown' },
  SW_ERR_BAD_VALUE: { close: null, about: 'a numeric step field (reward) is NaN, infinite or of the wrong type' },
  SW_ERR_EPISODE_ENDED: { close: null, about: 'a step arrived after the episode terminated, was truncated or was ended' },
} as const satisfies Record<string, { close: number | null; about: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error class of stageward. `message` is safe to show a client; no stack is ever sent. */
export class StagewardError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StagewardError';
    this.code = code;
  }

  /** WebSocket close code for this error, or null when the session survives it. */
  get closeCode(): number | null {
    return ERROR_CODES[this.code].close;
  }
}

export function isStagewardError(err: unknown, code?: ErrorCode): err is StagewardError {
  return err instanceof StagewardError && (code === undefined || err.code === code);
}
