/* Declarations cffi compiles against: a thin table of livekit_ffi's C ABI,
   resolved at run time from the library shipped in the `livekit` wheel. */

/* Loads the library at `path`; returns NULL on success, else a message. */
const char *rtc_load(const char *path);

/* livekit_ffi_initialize with rtc_on_event as the event callback. */
void rtc_initialize(bool capture_logs, const char *sdk, const char *sdk_version);
void rtc_dispose(void);

uint64_t rtc_request(const uint8_t *data, size_t len,
                     const uint8_t **res_ptr, size_t *res_len);
/* A request whose response is not needed: sends it and frees the response.
   Returns false when the native side refused the request. */
bool rtc_request_discard(const uint8_t *data, size_t len);
bool rtc_drop_handle(uint64_t handle);

/* Audio capture completions, settled in C without the GIL (see rtc_trio_ffi.c). */
void rtc_capture_field(int field_number);
int rtc_capture_wait(uint64_t async_id, int64_t timeout_us);
int rtc_capture_watch(uint64_t async_id);

/* Called by livekit_ffi on its own threads, once per serialized FfiEvent. */
extern "Python" void rtc_on_event(const uint8_t *data, size_t len);
