// JPEG decoding on libjpeg-turbo (TurboJPEG API) for stageward's preprocessing (models/preprocess.ts):
// decode(bytes, minWidth, minHeight) -> Promise<{ data, width, height }>, RGB uint8 HWC. The JPEG is
// decoded at the smallest DCT scaling factor (1/8 .. 1) whose output is still at least
// minWidth x minHeight, so a frame at least twice the model's size costs a fraction of a full decode.
// The decode runs on libuv's thread pool (napi async work), never on the JavaScript thread.
// Errors (warnings included: a truncated or corrupt stream) reject with an Error whose message starts
// with "jpeg: ".

#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  const unsigned char *input;
  size_t input_len;
  int min_width, min_height;
  unsigned char *output;
  int width, height;
  char error[256];
} DecodeJob;

static void decode_execute(napi_env env, void *data) {
  (void)env;
  DecodeJob *job = (DecodeJob *)data;
  tjhandle tj = tjInitDecompress();
  if (tj == NULL) {
    snprintf(job->error, sizeof job->error, "jpeg: cannot start a decompressor");
    return;
  }
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, job->input, (unsigned long)job->input_len, &width, &height, &subsamp, &colorspace) != 0) {
    snprintf(job->error, sizeof job->error, "jpeg: %s", tjGetErrorStr2(tj));
    tjDestroy(tj);
    return;
  }
  int count = 0;
  tjscalingfactor *factors = tjGetScalingFactors(&count);
  // The smallest output that still covers the requested size; 1/1 when none is smaller.
  int best_w = width, best_h = height;
  for (int i = 0; i < count; i++) {
    int w = TJSCALED(width, factors[i]);
    int h = TJSCALED(height, factors[i]);
    if (w >= job->min_width && h >= job->min_height && (size_t)w * h < (size_t)best_w * best_h) {
      best_w = w;
      best_h = h;
    }
  }
  unsigned char *out = (unsigned char *)malloc((size_t)best_w * best_h * 3);
  if (out == NULL) {
    snprintf(job->error, sizeof job->error, "jpeg: out of memory for %dx%d", best_w, best_h);
    tjDestroy(tj);
    return;
  }
  // Accurate IDCT; a warning (a truncated or corrupt stream) fails the decode, as sharp's failOn: 'warning' does.
  if (tjDecompress2(tj, job->input, (unsigned long)job->input_len, out, best_w, 0, best_h, TJPF_RGB, TJFLAG_STOPONWARNING) != 0) {
    snprintf(job->error, sizeof job->error, "jpeg: %s", tjGetErrorStr2(tj));
    free(out);
    tjDestroy(tj);
    return;
  }
  tjDestroy(tj);
  job->output = out;
  job->width = best_w;
  job->height = best_h;
}

static void free_output(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void decode_complete(napi_env env, napi_status status, void *data) {
  DecodeJob *job = (DecodeJob *)data;
  napi_value result;
  if (status != napi_ok && job->error[0] == '\0') snprintf(job->error, sizeof job->error, "jpeg: the decode was cancelled");
  if (job->error[0] != '\0') {
    napi_value message, error;
    napi_create_string_utf8(env, job->error, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, job->deferred, error);
    free(job->output);
  } else {
    napi_value buffer, width, height;
    size_t length = (size_t)job->width * job->height * 3;
    napi_create_external_buffer(env, length, job->output, free_output, NULL, &buffer);
    napi_create_int32(env, job->width, &width);
    napi_create_int32(env, job->height, &height);
    napi_create_object(env, &result);
    napi_set_named_property(env, result, "data", buffer);
    napi_set_named_property(env, result, "width", width);
    napi_set_named_property(env, result, "height", height);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->input_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value throw_type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static napi_value decode(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_type_error(env, "decode(bytes, minWidth, minHeight)");
  bool is_typed = false;
  napi_is_typedarray(env, argv[0], &is_typed);
  if (!is_typed) return throw_type_error(env, "decode: bytes must be a Uint8Array");
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *bytes = NULL;
  napi_value arraybuffer;
  napi_get_typedarray_info(env, argv[0], &type, &length, &bytes, &arraybuffer, &offset);
  if (type != napi_uint8_array) return throw_type_error(env, "decode: bytes must be a Uint8Array");
  int32_t min_width = 0, min_height = 0;
  if (napi_get_value_int32(env, argv[1], &min_width) != napi_ok || napi_get_value_int32(env, argv[2], &min_height) != napi_ok ||
      min_width < 1 || min_height < 1)
    return throw_type_error(env, "decode: minWidth and minHeight must be positive integers");

  DecodeJob *job = (DecodeJob *)calloc(1, sizeof(DecodeJob));
  if (job == NULL) return throw_type_error(env, "decode: out of memory");
  job->input = (const unsigned char *)bytes;
  job->input_len = length;
  job->min_width = min_width;
  job->min_height = min_height;
  napi_create_reference(env, argv[0], 1, &job->input_ref);  // keeps the bytes alive while the pool reads them
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "stageward.jpeg.decode", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, decode_execute, decode_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, version;
  napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &fn);
  napi_set_named_property(env, exports, "decode", fn);
  napi_create_string_utf8(env, "libjpeg-turbo", NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "library", version);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
