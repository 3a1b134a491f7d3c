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

/* Results of rtc_ring_open and rtc_capture_open. */
#define RTC_OPENED ...
#define RTC_EXISTS ...
#define RTC_NO_MEMORY ...
#define RTC_BAD_CAPACITY ...

/* Audio capture completions, recorded natively without the GIL, per source: a source's
   record exists from rtc_capture_open to rtc_capture_close. Its state: */
#define RTC_CAPTURE_IDLE ...       /* nothing in flight: the last capture completed */
#define RTC_CAPTURE_IN_FLIGHT ...
#define RTC_CAPTURE_FAILED ...     /* the last capture failed: rtc_capture_settle reports it */
#define RTC_CAPTURE_CLOSED ...     /* no record for the source */
/* and what rtc_capture_audio did, when not held back by one of the states above: */
#define RTC_CAPTURE_SENT ...
#define RTC_CAPTURE_REFUSED ...    /* the native side refused the request */
#define CAPTURE_ERROR_MAX ...

/* wake_fd: an eventfd written (no GIL) when the flight a waiter parked on ends; closed by
   the caller after rtc_capture_close, after which nothing writes to it. */
int rtc_capture_open(uint64_t source, int wake_fd);
void rtc_capture_close(uint64_t source);
/* The state after waiting up to timeout_us for the capture in flight to complete. */
int rtc_capture_wait(uint64_t source, int64_t timeout_us);
/* Waits like rtc_capture_wait; when the state is then IDLE, sends a CaptureAudioFrameRequest
   encoded here (SENT or REFUSED), else returns the state. */
int rtc_capture_audio(uint64_t source, uint64_t async_id, int64_t timeout_us,
                      const void *samples, uint32_t num_channels, uint32_t sample_rate,
                      uint32_t samples_per_channel);
/* The state. IN_FLIGHT: parked, the end of that flight writes to wake_fd. FAILED: its
   message is copied to error (NUL-terminated) and the state becomes IDLE (reported once). */
int rtc_capture_settle(uint64_t source, char *error, size_t error_size);
/* Writes to the wake_fd of every parked record (after a native panic). */
void rtc_capture_wake_all(void);

/* Playout: the native queue counted natively (see rtc_trio_ffi.c, "playout"). block: samples
   (all channels) of 10 ms. RTC_OPENED, RTC_EXISTS or RTC_CAPTURE_CLOSED. */
int rtc_capture_observe(uint64_t source, uint64_t stream, uint32_t block);
/* Stops observing (before its stream is released). RTC_OPENED or RTC_CAPTURE_CLOSED. */
int rtc_capture_unobserve(uint64_t source);
/* Sends the ClearAudioBufferRequest `request` now, and again once the capture in flight
   completes. RTC_CAPTURE_SENT, RTC_CAPTURE_REFUSED or RTC_CAPTURE_CLOSED. */
int rtc_capture_clear(uint64_t source, const uint8_t *request, size_t len);
/* out[0]: samples queued (all channels); out[1]: 10 ms ticks observed. park: the next tick
   writes to wake_fd. The capture state, or RTC_CAPTURE_CLOSED. */
int rtc_capture_playout(uint64_t source, bool park, uint64_t *out);

/* Received audio frames, buffered natively per stream without the GIL. */
typedef struct {
    uint64_t handle;
    uint64_t data_ptr;
    uint32_t samples_per_channel;
    uint32_t num_channels;
    uint32_t sample_rate;
} rtc_audio_frame;

/* wake_fd: an eventfd written (no GIL) when a frame reaches a ring whose consumer parked. */
/* RTC_OPENED, RTC_EXISTS, RTC_NO_MEMORY or RTC_BAD_CAPACITY (zero). */
int rtc_ring_open(uint64_t stream, uint32_t capacity, int wake_fd);
void rtc_ring_close(uint64_t stream);
int rtc_ring_pop(uint64_t stream, rtc_audio_frame *out);
/* 1: frames are waiting (do not park); 0: the next frame will write to the wake fd. */
int rtc_ring_park(uint64_t stream);
uint64_t rtc_ring_dropped(uint64_t stream);
/* Frames waiting in the ring of `stream` (0 without one). */
uint32_t rtc_ring_count(uint64_t stream);
uint64_t rtc_ring_held(void);

/* The callback livekit_ffi's threads call (rtc_initialize hands it over): settles capture
   completions and received audio frames natively, passes every other event to rtc_on_event.
   Tests feed it crafted events. */
void on_native_event(const uint8_t *data, size_t len);

/* Called by livekit_ffi's threads: every event C does not settle itself. */
extern "Python" void rtc_on_event(const uint8_t *data, size_t len);
