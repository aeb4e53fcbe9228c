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
  SW_ERR_VIEW_UNKNOWN: { close: null, about: 'a step or goal names a camera view the model does not have' },
  SW_ERR_TASK_UNKNOWN: { close: null, about: "the task is not one of the model card's tasks" },
  SW_ERR_BAD_OPTION: { close: null, about: 'an episode option (gamma, shaping, progress, scale) is out of range or unknown' },
  SW_ERR_BAD_VALUE: { close: null, about: 'a numeric step field (reward) is NaN, infinite or of the wrong type' },
  SW_ERR_EPISODE_ENDED: { close: null, about: 'a step arrived after the episode terminated, was truncated or was ended' },
  SW_ERR_DATASET_EXISTS: { close: null, about: 'the target folder exists and is not empty, and overwrite was not asked for' },
  SW_ERR_DATASET_NOT_FOUND: {
    close: null,
    about: 'a dataset folder or one of its files (info.json, a parquet file, a video) does not exist',
  },
  SW_ERR_DATASET_FORMAT: {
    close: null,
    about: 'a dataset file is unreadable or disagrees with the LeRobot v3.0 or v2.1 layout (version, fields, columns, frame counts)',
  },
  SW_ERR_DATASET_VIEW: { close: null, about: "a camera view is not one of the dataset's views, or an episode lacks one" },
  SW_ERR_DATASET_EPISODE: {
    close: null,
    about: "an episode index is unknown, or an episode's arrays disagree with the spec or with each other",
  },
  SW_ERR_DATASET_STATE: { close: null, about: 'a dataset writer was used after finish() or abort(), or after a failed write' },
  SW_ERR_DATASET_SPEC: { close: null, about: 'a dataset spec or export option is invalid (views, image size, fps, stage names)' },
  SW_ERR_ANNOTATION_MISSING: { close: null, about: 'an episode has no subtask annotations where labels need them' },
  SW_ERR_ANNOTATION_INVALID: { close: null, about: 'subtask spans are out of order, overlap, leave the episode, or name an unknown stage' },
  SW_ERR_ANNOTATION_FILE: {
    close: null,
    about:
      'a keyframe file (`stageward annotate --from`) cannot be read, is not .csv or .json, or is malformed (header, fields, JSON shape)',
  },
  SW_ERR_ANNOTATION_EXISTS: {
    close: null,
    about: 'the dataset already has sparse subtask annotations or stage priors, and overwrite was not asked for',
  },
  SW_ERR_RABC_OPTION: {
    close: null,
    about: 'an RA-BC option is out of range (chunk < 1 frame, kappa < 0, eps <= 0), or weights and losses differ in length',
  },
  SW_ERR_SHARD_MISSING: {
    close: null,
    about: 'score merge: a shard I of 0..N-1 has no part (or a part lacks its values file); the message names the missing I',
  },
  SW_ERR_SHARD_DUPLICATE: { close: null, about: 'score merge: two parts claim the same shard I, or two parts cover the same episode' },
  SW_ERR_SHARD_FOREIGN: {
    close: null,
    about:
      'score merge: a part was made from another dataset (or this one before it changed), or with another N, model or value-changing option',
  },
  SW_ERR_FFMPEG_NOT_FOUND: { close: null, about: 'no working ffmpeg binary (ffmpeg-static, @ffmpeg-installer/ffmpeg, PATH, FFMPEG_PATH)' },
  SW_ERR_FFMPEG: { close: null, about: 'ffmpeg failed while encoding, decoding or probing a video' },
  SW_ERR_POLICY: {
    close: null,
    about: 'a policy file is missing, unreadable, or made for another feature map; or a policy run option is invalid',
  },
  SW_ERR_CONFIG: {
    close: null,
    about: 'a server setting (config file, STAGEWARD_* env var or CLI flag) is missing, mistyped or out of range; start-up stops',
  },
  SW_ERR_PROTOCOL: {
    close: null,
    about:
      'a message is not valid MessagePack or JSON, is not a map, has an unknown `type` or field, or comes out of order (a second hello)',
  },
  SW_ERR_MESSAGE_TOO_LARGE: {
    close: 1009,
    about: 'a WebSocket message is over maxPayloadBytes; refused on its declared length, before it is buffered',
  },
  SW_ERR_LIMIT: {
    close: null,
    about: 'a message is over a structural limit (maxViews, maxNestingDepth, maxMessageElements, array rank, state size)',
  },
  SW_ERR_NDARRAY: {
    close: null,
    about:
      'a numpy array map (`__ndarray__`) or scalar (`__npgeneric__`) has a bad dtype, shape or byte length, or an image array is not uint8 HWC',
  },
  SW_ERR_AUTH: {
    close: 4401,
    about: 'the API key is missing or wrong (header `Authorization: Api-Key <key>` or the hello field `api_key`)',
  },
  SW_ERR_NO_SESSION: {
    close: null,
    about:
      "a message other than hello arrived before the session's hello; on the dashboard, a session id that is not (or no longer) listed",
  },
  SW_ERR_NO_EPISODE: { close: null, about: 'a step or end arrived with no episode started (send reset first)' },
  SW_ERR_MODEL_UNAVAILABLE: { close: null, about: 'hello names a model this server does not serve' },
  SW_ERR_TOO_MANY_SESSIONS: {
    close: 1013,
    about: 'the server already holds maxSessions connections (or the dashboard feed dashboard.maxViewers viewers); try again later',
  },
  SW_ERR_BUSY: { close: null, about: 'more than maxQueuedMessages messages of one connection wait for their replies; this one is refused' },
  SW_ERR_IDLE_TIMEOUT: {
    close: 1001,
    about: 'no message for idleTimeoutMs (or no hello within helloTimeoutMs); the server closes the connection',
  },
  SW_ERR_SHUTTING_DOWN: {
    close: 1001,
    about:
      'the server is shutting down: messages received are answered within shutdownGraceMs, the rest get this code, then the connection closes',
  },
  SW_ERR_SLOW_READER: {
    close: 4429,
    about: 'the client left more than maxQueuedReplyBytes of replies unread; the server closes the connection',
  },
  SW_ERR_INTERNAL: { close: 1011, about: 'an unexpected server fault; details go to the server log, never to the client' },
  SW_ERR_CONNECT: { close: null, about: 'client side: the WebSocket could not be opened (refused, HTTP error status, timeout)' },
  SW_ERR_CONNECTION_CLOSED: { close: null, about: 'client side: the connection closed before a request got its reply' },
  SW_ERR_EPISODE_LOST: { close: null, about: 'client side: the connection closed mid-episode, losing its state; call reset() first' },
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

/** Longest client string an error message quotes back (characters); longer ones are cut, with their length. */
export const ECHO_MAX_CHARS = 64;
/** Longest error message sent to a client (characters): a bound on every error reply, whatever it quotes. */
export const ERROR_MESSAGE_MAX_CHARS = 512;

/**
 * A client-supplied string for an error message, quoted and cut to ECHO_MAX_CHARS: the client sees
 * which value was refused, and a 1 MiB value costs the reply no more than a short one.
 */
export function echo(value: string): string {
  if (value.length <= ECHO_MAX_CHARS) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, ECHO_MAX_CHARS))}... (${value.length} characters)`;
}

/** An error message as sent: cut to ERROR_MESSAGE_MAX_CHARS. */
export function boundedMessage(message: string): string {
  return message.length <= ERROR_MESSAGE_MAX_CHARS ? message : `${message.slice(0, ERROR_MESSAGE_MAX_CHARS - 3)}...`;
}

export function isStagewardError(err: unknown, code?: ErrorCode): err is StagewardError {
  return err instanceof StagewardError && (code === undefined || err.code === code);
}
