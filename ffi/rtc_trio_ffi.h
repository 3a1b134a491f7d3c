/* Declarations cffi compiles against: a thin table of livekit_ffi's C ABI, resolved at run
   time from the library shipped in the `livekit` wheel, plus the native-side fast paths. */

/* Loads the library at `path`; returns NULL on success, else a message. */
const char *rtc_load(const char *path);

/* livekit_ffi_initialize with rtc_trio's event callback. */
void rtc_initialize(bool capture_logs, const char *sdk, const char *sdk_version);
void rtc_dispose(void);
/* Lets no native thread into Python any more; waits for those inside (GIL released). */
void rtc_close_callbacks(void);

uint64_t rtc_request(const uint8_t *data, size_t len,
                     const uint8_t **res_ptr, size_t *res_len);
/* A request whose response is not needed: sends it and frees the response.
   Returns false when the native side refused the request. */
bool rtc_request_discard(const uint8_t *data, size_t len);
bool rtc_drop_handle(uint64_t handle);

/* Field numbers of the fast paths: FfiEvent's capture_audio_frame and audio_stream_event,
   FfiRequest's capture_audio_frame (0 disables that fast path). */
void rtc_fast_fields(int capture_event, int audio_stream_event, int capture_request);

/* Audio capture completions, recorded natively without the GIL. */
int rtc_capture_wait(uint64_t async_id, int64_t timeout_us);
int rtc_capture_watch(uint64_t async_id);
/* Waits (like rtc_capture_wait) for the capture `previous` (0: none), then sends a
   CaptureAudioFrameRequest encoded here. 1: sent; 0: previous not complete, nothing sent;
   -1: the native side refused the request. */
int rtc_capture_audio(uint64_t previous, int64_t timeout_us, uint64_t source, uint64_t async_id,
                      const void *samples, uint32_t num_channels, uint32_t sample_rate,
                      uint32_t samples_per_channel);

/* Received audio frames, buffered natively per stream without the GIL. */
typedef struct {
    uint64_t handle;
    uint64_t data_ptr;
    uint32_t samples_per_channel;
    uint32_t num_channels;
    uint32_t sample_rate;
} rtc_audio_frame;

/* wake_fd: an eventfd written (no GIL) when a frame reaches a ring whose consumer parked. */
bool rtc_ring_open(uint64_t stream, uint32_t capacity, int wake_fd);
void rtc_ring_close(uint64_t stream);
int rtc_ring_pop(uint64_t stream, rtc_audio_frame *out);
/* 1: frames are waiting (do not park); 0: the next frame will write to the wake fd. */
int rtc_ring_park(uint64_t stream);
uint64_t rtc_ring_dropped(uint64_t stream);
uint64_t rtc_ring_held(void);

/* Called by livekit_ffi's threads: every event C does not settle itself. */
extern "Python" void rtc_on_event(const uint8_t *data, size_t len);
