/* Run-time binding to livekit_ffi (dlopen + dlsym: no link-time dependency on wherever the
   `livekit` wheel put the library), and the two events settled here on the native threads
   without taking the GIL: audio capture completions and received audio frames. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void rtc_on_event(const uint8_t *data, size_t len);

typedef struct {
    uint64_t handle;
    uint64_t data_ptr;
    uint32_t samples_per_channel;
    uint32_t num_channels;
    uint32_t sample_rate;
} rtc_audio_frame;

/* The received frames the fast path accepts; the same bounds as rtc_trio/_audio_frame.py. */
#define MAX_CHANNELS 16
#define MAX_SAMPLE_RATE 384000
#define MAX_FRAME_SECONDS 10

/* Results of rtc_ring_open and rtc_capture_open. */
#define RTC_OPENED 0
#define RTC_EXISTS 1    /* the stream or source has one already */
#define RTC_NO_MEMORY 2
#define RTC_BAD_CAPACITY 3

/* The state of a source's capture (rtc_capture_*), and what rtc_capture_audio did. */
#define RTC_CAPTURE_IDLE 0      /* nothing in flight: the last capture completed */
#define RTC_CAPTURE_IN_FLIGHT 1
#define RTC_CAPTURE_FAILED 2    /* the last capture failed: rtc_capture_settle reports it */
#define RTC_CAPTURE_CLOSED 3    /* no capture record for this source (closed, or never opened) */
#define RTC_CAPTURE_SENT 4
#define RTC_CAPTURE_REFUSED 5   /* the native side refused the request */
#define CAPTURE_ERROR_MAX 256
#define CLEAR_REQUEST_MAX 32

/* --- the library ---------------------------------------------------------------------- */

typedef void (*lk_callback)(const uint8_t *, size_t);
static uint64_t (*lk_request)(const uint8_t *, size_t, const uint8_t **, size_t *);
static bool (*lk_drop_handle)(uint64_t);
static void (*lk_initialize)(lk_callback, bool, const char *, const char *);
static void (*lk_dispose)(void);

static const char *rtc_load(const char *path)
{
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        return dlerror();
    *(void **)&lk_request = dlsym(lib, "livekit_ffi_request");
    *(void **)&lk_drop_handle = dlsym(lib, "livekit_ffi_drop_handle");
    *(void **)&lk_initialize = dlsym(lib, "livekit_ffi_initialize");
    *(void **)&lk_dispose = dlsym(lib, "livekit_ffi_dispose");
    if (!lk_request || !lk_drop_handle || !lk_initialize || !lk_dispose)
        return "a livekit_ffi_* symbol is missing from the library";
    return NULL;
}


static uint64_t rtc_request(const uint8_t *data, size_t len,
                            const uint8_t **res_ptr, size_t *res_len)
{
    return lk_request(data, len, res_ptr, res_len);
}

static bool rtc_request_discard(const uint8_t *data, size_t len)
{
    const uint8_t *res_ptr = NULL;
    size_t res_len = 0;
    uint64_t handle = lk_request(data, len, &res_ptr, &res_len);
    if (handle == 0)
        return false;
    lk_drop_handle(handle);
    return true;
}

static bool rtc_drop_handle(uint64_t handle) { return lk_drop_handle(handle); }

/* --- protobuf wire reading (just enough for two event shapes) ------------------------- */

typedef struct {
    const uint8_t *p, *end;
} reader;

static bool read_varint(reader *r, uint64_t *out)
{
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t byte = *r->p++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return true;
        }
    }
    return false;
}

/* A field's key (number << 3 | wire type); false for a number protobuf does not allow. */
static bool read_key(reader *r, uint64_t *key)
{
    return read_varint(r, key) && *key >> 3 >= 1 && *key >> 3 <= 536870911;
}

/* Reads a length-delimited field's body into *body. */
static bool read_message(reader *r, reader *body)
{
    uint64_t size;
    if (!read_varint(r, &size) || size > (uint64_t)(r->end - r->p))
        return false;
    body->p = r->p;
    body->end = r->p + size;
    r->p += size;
    return true;
}

static bool skip_field(reader *r, uint64_t key)
{
    uint64_t ignored;
    reader body;
    switch (key & 7) {
    case 0: return read_varint(r, &ignored);
    case 1: if (r->end - r->p < 8) return false; r->p += 8; return true;
    case 2: return read_message(r, &body);
    case 5: if (r->end - r->p < 4) return false; r->p += 4; return true;
    default: return false;
    }
}

/* The single field of an FfiEvent (a oneof): its number and body. */
static bool event_body(const uint8_t *data, size_t len, uint32_t *field, reader *body)
{
    reader r = {data, data + len};
    uint64_t key;
    if (!read_key(&r, &key) || (key & 7) != 2 || !read_message(&r, body))
        return false;
    *field = (uint32_t)(key >> 3);
    return r.p == r.end;
}

static uint32_t capture_field, audio_event_field, capture_request_field;

static void rtc_fast_fields(int capture_event, int audio_stream_event, int capture_request)
{
    capture_field = (uint32_t)capture_event;
    audio_event_field = (uint32_t)audio_stream_event;
    capture_request_field = (uint32_t)capture_request;
}

/* --- protobuf wire writing: one CaptureAudioFrameRequest ------------------------------- */

static uint8_t *put_varint(uint8_t *p, uint64_t value)
{
    while (value >= 0x80) {
        *p++ = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    *p++ = (uint8_t)value;
    return p;
}

/* FfiRequest{capture_audio_frame{source_handle=1, buffer=2{data_ptr=1, num_channels=2,
   sample_rate=3, samples_per_channel=4}, request_async_id=3}}; returns the length. */
static size_t encode_capture(uint8_t *out, uint64_t source, uint64_t async_id, uint64_t data_ptr,
                             uint32_t channels, uint32_t rate, uint32_t samples)
{
    uint8_t info[48], inner[96], *p = info;
    p = put_varint(put_varint(p, 1 << 3), data_ptr);
    p = put_varint(put_varint(p, 2 << 3), channels);
    p = put_varint(put_varint(p, 3 << 3), rate);
    p = put_varint(put_varint(p, 4 << 3), samples);
    size_t info_len = (size_t)(p - info);
    p = inner;
    p = put_varint(put_varint(p, 1 << 3), source);
    p = put_varint(put_varint(p, 2 << 3 | 2), info_len);
    for (size_t i = 0; i < info_len; i++)
        *p++ = info[i];
    p = put_varint(put_varint(p, 3 << 3), async_id);
    size_t inner_len = (size_t)(p - inner);
    p = put_varint(put_varint(out, (uint64_t)capture_request_field << 3 | 2), inner_len);
    for (size_t i = 0; i < inner_len; i++)
        *p++ = inner[i];
    return (size_t)(p - out);
}

/* CaptureAudioFrameCallback{async_id = 1, error = 2}; other fields are skipped. */
typedef struct {
    uint64_t async_id;
    const uint8_t *error; /* not NUL-terminated; NULL or empty: the capture succeeded */
    size_t error_len;
} capture_result;

static bool read_capture_callback(reader r, capture_result *out)
{
    bool found = false;
    uint64_t key;
    reader text;
    out->error = NULL;
    out->error_len = 0;
    while (r.p < r.end) {
        if (!read_key(&r, &key))
            return false;
        if (key == (1 << 3 | 0)) {
            if (!read_varint(&r, &out->async_id))
                return false;
            found = true;
        } else if (key == (2 << 3 | 2)) {
            if (!read_message(&r, &text))
                return false;
            out->error = text.p;
            out->error_len = (size_t)(text.end - text.p);
        } else if (!skip_field(&r, key)) {
            return false;
        }
    }
    return found;
}

/* AudioFrameBufferInfo{data_ptr=1, num_channels=2, sample_rate=3, samples_per_channel=4}.
   Values are truncated to the field's width, as protobuf decoders do. */
static bool read_buffer_info(reader r, rtc_audio_frame *frame)
{
    uint64_t key, value;
    while (r.p < r.end) {
        if (!read_key(&r, &key))
            return false;
        if ((key & 7) != 0) {
            if (!skip_field(&r, key))
                return false;
            continue;
        }
        if (!read_varint(&r, &value))
            return false;
        switch (key >> 3) {
        case 1: frame->data_ptr = value; break;
        case 2: frame->num_channels = (uint32_t)value; break;
        case 3: frame->sample_rate = (uint32_t)value; break;
        case 4: frame->samples_per_channel = (uint32_t)value; break;
        }
    }
    return true;
}

/* A frame Python can view: every field set, within bounds, its size consistent with its
   rate (at most MAX_FRAME_SECONDS long), so at most 245,760,000 bytes. */
static bool valid_frame(const rtc_audio_frame *frame)
{
    return frame->handle != 0 && frame->data_ptr != 0 &&
           frame->num_channels >= 1 && frame->num_channels <= MAX_CHANNELS &&
           frame->sample_rate >= 1 && frame->sample_rate <= MAX_SAMPLE_RATE &&
           frame->samples_per_channel >= 1 &&
           (uint64_t)frame->samples_per_channel <= (uint64_t)frame->sample_rate * MAX_FRAME_SECONDS;
}

/* AudioStreamEvent{stream_handle=1, frame_received=2{frame=1{handle=1{id=1}, info=2}}}:
   true for a frame that valid_frame accepts; anything else is Python's to handle. */
static bool received_audio_frame(reader r, uint64_t *stream, rtc_audio_frame *frame)
{
    uint64_t key;
    reader received = {0}, owned = {0}, part;
    memset(frame, 0, sizeof *frame);
    *stream = 0;
    while (r.p < r.end) {
        if (!read_key(&r, &key))
            return false;
        if (key == (1 << 3 | 0)) {
            if (!read_varint(&r, stream))
                return false;
        } else if (key == (2 << 3 | 2)) {
            if (!read_message(&r, &received))
                return false;
        } else {
            return false; /* end of stream, or unknown: Python handles it */
        }
    }
    if (!*stream || !received.p || !read_key(&received, &key) || key != (1 << 3 | 2) ||
        !read_message(&received, &owned) || received.p != received.end)
        return false; /* AudioFrameReceived{frame = 1} and nothing else */
    while (owned.p < owned.end) {
        if (!read_key(&owned, &key) || (key & 7) != 2 || !read_message(&owned, &part))
            return false;
        if (key >> 3 == 1) { /* FfiOwnedHandle{id = 1} and nothing else */
            if (!read_key(&part, &key) || key != (1 << 3 | 0) || !read_varint(&part, &frame->handle) ||
                part.p != part.end)
                return false;
        } else if (key >> 3 == 2) {
            if (!read_buffer_info(part, frame))
                return false;
        }
    }
    return valid_frame(frame);
}

/* --- audio capture completions -----------------------------------------------------------
   Each open source has a capture record (rtc_capture_open .. rtc_capture_close) holding its
   one capture in flight, found by source handle. A completion event carries only the async
   id, so a record with a capture in flight is also found by that id. Both indexes are
   chained hash tables: they grow with the number of sources and nothing one source does can
   displace another's record. A completion is recorded here on the native thread without
   the GIL (a failure with its message), and the producer's next capture finds it with one
   call. Python never sees a completion: when it must wait for one, rtc_capture_settle
   parks the record, and the end of the flight writes to the source's eventfd (wake_fd),
   which trio's I/O poll watches. The outcome stays here until rtc_capture_settle reads
   it, so a wait given up (cancelled) loses nothing. A completion for no record in flight
   (its source closed) is dropped here. */

typedef struct capture {
    struct capture *next_source, *next_flight, *next_observer; /* in the buckets of the indexes */
    uint64_t source, async_id;
    int state;   /* RTC_CAPTURE_IDLE, _IN_FLIGHT or _FAILED */
    bool parked; /* Python waits on wake_fd: the end of this flight writes to it */
    int wake_fd;
    char error[CAPTURE_ERROR_MAX];
    /* The native queue (see "playout" below), in samples over all channels. */
    uint64_t observer;       /* the stream of the source's own output; 0: not observed */
    uint64_t block;          /* what the native queue releases every 10 ms */
    uint64_t queued;         /* sent, not failed, not cleared, not yet released */
    uint64_t flight_samples; /* of the capture in flight */
    uint64_t ticks;          /* 10 ms frames the source played (observed) */
    bool tick_parked;        /* Python waits on wake_fd: the next tick writes to it */
    bool clear_after_flight; /* clear_queue came while a capture was in flight */
    uint8_t clear_request[CLEAR_REQUEST_MAX];
    size_t clear_len;
} capture;

#define CAPTURE_BUCKETS 256
static pthread_mutex_t capture_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t capture_cond; /* on the monotonic clock: see capture_init */
static pthread_once_t capture_once = PTHREAD_ONCE_INIT;
static capture *by_source[CAPTURE_BUCKETS], *by_flight[CAPTURE_BUCKETS], *by_observer[CAPTURE_BUCKETS];
static int capture_sleepers;

static void capture_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&capture_cond, &attr);
    pthread_condattr_destroy(&attr);
}

static capture **source_slot(uint64_t source)
{
    capture **slot = &by_source[source % CAPTURE_BUCKETS];
    while (*slot && (*slot)->source != source)
        slot = &(*slot)->next_source;
    return slot;
}

static capture **flight_slot(uint64_t async_id)
{
    capture **slot = &by_flight[async_id % CAPTURE_BUCKETS];
    while (*slot && (*slot)->async_id != async_id)
        slot = &(*slot)->next_flight;
    return slot;
}

static capture **observer_slot(uint64_t stream)
{
    capture **slot = &by_observer[stream % CAPTURE_BUCKETS];
    while (*slot && (*slot)->observer != stream)
        slot = &(*slot)->next_observer;
    return slot;
}

static uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* With capture_lock held: c's capture of `samples` went out; its completion is expected. */
static void start_flight(capture *c, uint64_t async_id, uint64_t samples)
{
    c->flight_samples = samples;
    c->queued += samples;
    c->state = RTC_CAPTURE_IN_FLIGHT;
    c->async_id = async_id;
    capture **slot = flight_slot(async_id);
    c->next_flight = *slot;
    *slot = c;
}

/* With capture_lock held: wakes the waiter parked on c, if any. */
static void wake_parked(capture *c)
{
    if (c->parked) { /* under the lock: the fd stays open until the record is closed */
        uint64_t one = 1;
        c->parked = false;
        ssize_t ignored = write(c->wake_fd, &one, sizeof one);
        (void)ignored; /* EAGAIN: the counter is already non-zero, the waiter wakes */
    }
}

/* With capture_lock held: c's capture is no longer in flight; a parked waiter is woken. */
static void end_flight(capture *c, int state)
{
    capture **slot = &by_flight[c->async_id % CAPTURE_BUCKETS];
    while (*slot != c)
        slot = &(*slot)->next_flight;
    *slot = c->next_flight;
    c->next_flight = NULL;
    c->state = state;
    wake_parked(c);
}

/* RTC_OPENED, RTC_EXISTS or RTC_NO_MEMORY. wake_fd: an eventfd, written when a parked
   wait ends (see rtc_capture_settle); the caller closes it after rtc_capture_close. */
static int rtc_capture_open(uint64_t source, int wake_fd)
{
    pthread_once(&capture_once, capture_init);
    capture *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RTC_NO_MEMORY;
    c->source = source;
    c->wake_fd = wake_fd;
    pthread_mutex_lock(&capture_lock);
    capture **slot = source_slot(source);
    bool fresh = *slot == NULL;
    if (fresh)
        *slot = c;
    pthread_mutex_unlock(&capture_lock);
    if (!fresh)
        free(c);
    return fresh ? RTC_OPENED : RTC_EXISTS;
}

/* Removes the source's record; its completion, if one is still to come, will be dropped.
   Nothing writes to its wake_fd after this returns. */
static void rtc_capture_close(uint64_t source)
{
    pthread_mutex_lock(&capture_lock);
    capture **slot = source_slot(source);
    capture *c = *slot;
    if (c) {
        *slot = c->next_source;
        if (c->state == RTC_CAPTURE_IN_FLIGHT)
            end_flight(c, RTC_CAPTURE_IDLE);
        if (c->observer) {
            capture **seen = observer_slot(c->observer);
            *seen = c->next_observer;
        }
        if (capture_sleepers)
            pthread_cond_broadcast(&capture_cond);
    }
    pthread_mutex_unlock(&capture_lock);
    free(c); /* out of both indexes: no other thread can reach it */
}

/* With capture_lock held: waits up to timeout_us while the source has a capture in
   flight; returns its record (NULL once closed). */
static capture *wait_settled(uint64_t source, int64_t timeout_us)
{
    capture *c = *source_slot(source);
    if (c == NULL || c->state != RTC_CAPTURE_IN_FLIGHT || timeout_us <= 0)
        return c;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += (long)(timeout_us % 1000000) * 1000;
    deadline.tv_sec += timeout_us / 1000000 + deadline.tv_nsec / 1000000000;
    deadline.tv_nsec %= 1000000000;
    capture_sleepers++;
    while (c != NULL && c->state == RTC_CAPTURE_IN_FLIGHT) {
        int timed_out = pthread_cond_timedwait(&capture_cond, &capture_lock, &deadline) == ETIMEDOUT;
        c = *source_slot(source); /* closed meanwhile? then it is gone */
        if (timed_out)
            break;
    }
    capture_sleepers--;
    return c;
}

/* The source's capture state after waiting up to timeout_us for the one in flight. */
static int rtc_capture_wait(uint64_t source, int64_t timeout_us)
{
    pthread_mutex_lock(&capture_lock);
    capture *c = wait_settled(source, timeout_us);
    int state = c ? c->state : RTC_CAPTURE_CLOSED;
    pthread_mutex_unlock(&capture_lock);
    return state;
}

/* Waits (like rtc_capture_wait) for the capture in flight, then, if it succeeded, sends this
   one as a CaptureAudioFrameRequest encoded here. */
static int rtc_capture_audio(uint64_t source, uint64_t async_id, int64_t timeout_us,
                             const void *samples, uint32_t num_channels, uint32_t sample_rate,
                             uint32_t samples_per_channel)
{
    pthread_mutex_lock(&capture_lock);
    capture *c = wait_settled(source, timeout_us);
    int state = c ? c->state : RTC_CAPTURE_CLOSED;
    if (state == RTC_CAPTURE_IDLE) /* before the request: its completion may come first */
        start_flight(c, async_id, (uint64_t)samples_per_channel * num_channels);
    pthread_mutex_unlock(&capture_lock);
    if (state != RTC_CAPTURE_IDLE)
        return state;
    uint8_t request[160];
    size_t len = encode_capture(request, source, async_id, (uint64_t)(uintptr_t)samples,
                                num_channels, sample_rate, samples_per_channel);
    if (rtc_request_discard(request, len))
        return RTC_CAPTURE_SENT;
    pthread_mutex_lock(&capture_lock);
    c = *source_slot(source); /* refused: no completion will come */
    if (c && c->state == RTC_CAPTURE_IN_FLIGHT && c->async_id == async_id) {
        c->queued = minus(c->queued, c->flight_samples);
        end_flight(c, RTC_CAPTURE_IDLE);
    }
    pthread_mutex_unlock(&capture_lock);
    return RTC_CAPTURE_REFUSED;
}

/* The source's capture state. IN_FLIGHT: parks, i.e. the end of this flight will write to
   wake_fd. FAILED: the message is copied to error (NUL-terminated) and the state becomes
   IDLE: a failure is reported exactly once. */
static int rtc_capture_settle(uint64_t source, char *error, size_t error_size)
{
    pthread_mutex_lock(&capture_lock);
    capture *c = *source_slot(source);
    int state = c ? c->state : RTC_CAPTURE_CLOSED;
    if (state == RTC_CAPTURE_IN_FLIGHT) {
        c->parked = true;
    } else if (state == RTC_CAPTURE_FAILED) {
        if (error_size) {
            size_t n = strnlen(c->error, error_size - 1);
            memcpy(error, c->error, n);
            error[n] = '\0';
        }
        c->state = RTC_CAPTURE_IDLE;
    }
    pthread_mutex_unlock(&capture_lock);
    return state;
}

/* Wakes every parked waiter: after a native panic no completion may come, and a woken
   waiter finds the library unusable. */
static void rtc_capture_wake_all(void)
{
    pthread_mutex_lock(&capture_lock);
    for (size_t b = 0; b < CAPTURE_BUCKETS; b++)
        for (capture *c = by_source[b]; c; c = c->next_source) {
            if (c->tick_parked) {
                c->tick_parked = false;
                c->parked = true;
            }
            wake_parked(c);
        }
    pthread_mutex_unlock(&capture_lock);
}

/* Records a completion in its record: IDLE, or FAILED with its message. One for no record
   in flight (its source closed, or a refused request) is dropped. */
static void settle_capture(const capture_result *result)
{
    pthread_mutex_lock(&capture_lock);
    capture *c = *flight_slot(result->async_id);
    if (c) {
        bool failed = result->error_len > 0;
        if (failed) {
            size_t n = result->error_len < CAPTURE_ERROR_MAX - 1 ? result->error_len : CAPTURE_ERROR_MAX - 1;
            memcpy(c->error, result->error, n);
            c->error[n] = '\0';
        }
        if (failed) /* nothing of it was queued */
            c->queued = minus(c->queued, c->flight_samples);
        if (c->clear_after_flight) { /* it may have been queued after the clear: clear again, */
            c->clear_after_flight = false; /* before any other capture can be sent */
            if (rtc_request_discard(c->clear_request, c->clear_len))
                c->queued = 0;
        }
        end_flight(c, failed ? RTC_CAPTURE_FAILED : RTC_CAPTURE_IDLE);
        if (capture_sleepers)
            pthread_cond_broadcast(&capture_cond);
    }
    pthread_mutex_unlock(&capture_lock);
}

/* --- playout -------------------------------------------------------------------------------
   livekit_ffi tells nothing about a source's queue. Its facts, from webrtc-sys's
   AudioTrackSource: a capture is inserted whole into the queue (a frame longer than the queue
   in pieces), every 10 ms the source plays one 10 ms block from the queue to its tracks if it
   holds one (else silence, and a shorter remainder stays), and clearing empties it. So the
   queue is counted here: what was sent, less what failed or was cleared, less one block for
   every block the source played while the count held one. A source's own output is observed
   through a native stream on a track of its own (rtc_capture_observe): each of its frames is
   one such tick, settled here and released at once. */

/* RTC_OPENED, RTC_EXISTS (the source or the stream is observed already) or RTC_CAPTURE_CLOSED.
   block: the samples (all channels) of 10 ms. */
static int rtc_capture_observe(uint64_t source, uint64_t stream, uint32_t block)
{
    int result = RTC_OPENED;
    pthread_mutex_lock(&capture_lock);
    capture *c = *source_slot(source);
    if (c == NULL) {
        result = RTC_CAPTURE_CLOSED;
    } else if (c->observer || stream == 0 || *observer_slot(stream)) {
        result = RTC_EXISTS;
    } else {
        c->observer = stream;
        c->block = block;
        capture **slot = &by_observer[stream % CAPTURE_BUCKETS];
        c->next_observer = *slot;
        *slot = c;
    }
    pthread_mutex_unlock(&capture_lock);
    return result;
}

/* Stops observing the source's output (its stream is then released): frames of that stream
   are no ticks from here on. RTC_OPENED, or RTC_CAPTURE_CLOSED without a record. */
static int rtc_capture_unobserve(uint64_t source)
{
    int result = RTC_OPENED;
    pthread_mutex_lock(&capture_lock);
    capture *c = *source_slot(source);
    if (c == NULL) {
        result = RTC_CAPTURE_CLOSED;
    } else if (c->observer) {
        capture **seen = observer_slot(c->observer);
        *seen = c->next_observer;
        c->next_observer = NULL;
        c->observer = 0;
    }
    pthread_mutex_unlock(&capture_lock);
    return result;
}

/* A frame of an observed stream: one tick of its source. False for another stream. */
static bool observe_tick(uint64_t stream, const rtc_audio_frame *frame)
{
    pthread_mutex_lock(&capture_lock);
    capture *c = *observer_slot(stream);
    if (c) {
        c->ticks++;
        if (c->queued >= c->block)
            c->queued -= c->block;
        if (c->tick_parked) {
            c->tick_parked = false;
            c->parked = true;
            wake_parked(c);
        }
    }
    pthread_mutex_unlock(&capture_lock);
    if (c)
        lk_drop_handle(frame->handle);
    return c != NULL;
}

/* Sends `request` (a ClearAudioBufferRequest of this source, at most CLEAR_REQUEST_MAX bytes)
   now, and again when the capture in flight completes (it may be queued after this clear),
   before another can be sent. RTC_CAPTURE_SENT, _REFUSED or _CLOSED. */
static int rtc_capture_clear(uint64_t source, const uint8_t *request, size_t len)
{
    if (len > CLEAR_REQUEST_MAX)
        return RTC_CAPTURE_REFUSED;
    pthread_mutex_lock(&capture_lock); /* held: no completion, no capture meanwhile */
    capture *c = *source_slot(source);
    int result = RTC_CAPTURE_CLOSED;
    if (c) {
        result = rtc_request_discard(request, len) ? RTC_CAPTURE_SENT : RTC_CAPTURE_REFUSED;
        if (result == RTC_CAPTURE_SENT) {
            c->queued = 0;
            if (c->state == RTC_CAPTURE_IN_FLIGHT) {
                memcpy(c->clear_request, request, len);
                c->clear_len = len;
                c->clear_after_flight = true;
            }
        }
    }
    pthread_mutex_unlock(&capture_lock);
    return result;
}

/* The source's queue: out[0] samples queued (all channels), out[1] ticks observed so far.
   park: the next tick writes to wake_fd. RTC_CAPTURE_CLOSED without a record, else its state. */
static int rtc_capture_playout(uint64_t source, bool park, uint64_t *out)
{
    pthread_mutex_lock(&capture_lock);
    capture *c = *source_slot(source);
    int state = RTC_CAPTURE_CLOSED;
    if (c) {
        state = c->state;
        out[0] = c->queued;
        out[1] = c->ticks;
        if (park)
            c->tick_parked = true;
    }
    pthread_mutex_unlock(&capture_lock);
    return state;
}

/* --- received audio frames -----------------------------------------------------------------
   Each open audio stream has a ring of its newest frames (drop-oldest when full, counted).
   A consumer that found its ring empty parks on the ring's eventfd, which the next frame
   writes to, here on the native thread: no GIL, no Python. A frame for a stream with no
   ring goes to Python's router instead. */

typedef struct ring {
    struct ring *next; /* in its hash bucket */
    uint64_t stream;
    uint32_t capacity, head, count;
    bool parked; /* the consumer waits on wake_fd: write to it on the next frame */
    int wake_fd;
    uint64_t dropped;
    rtc_audio_frame frames[];
} ring;

#define RING_BUCKETS 1024
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static ring *ring_buckets[RING_BUCKETS];
static uint64_t ring_held; /* frame handles sitting in rings */

static ring **ring_slot(uint64_t stream)
{
    ring **slot = &ring_buckets[stream % RING_BUCKETS];
    while (*slot && (*slot)->stream != stream)
        slot = &(*slot)->next;
    return slot;
}

/* RTC_OPENED, RTC_EXISTS, RTC_NO_MEMORY or RTC_BAD_CAPACITY (zero). */
static int rtc_ring_open(uint64_t stream, uint32_t capacity, int wake_fd)
{
    if (capacity == 0)
        return RTC_BAD_CAPACITY;
    ring *r = calloc(1, sizeof(ring) + (size_t)capacity * sizeof(rtc_audio_frame));
    if (r == NULL)
        return RTC_NO_MEMORY;
    r->stream = stream;
    r->capacity = capacity;
    r->wake_fd = wake_fd;
    pthread_mutex_lock(&ring_lock);
    ring **slot = ring_slot(stream);
    bool fresh = *slot == NULL;
    if (fresh)
        *slot = r;
    pthread_mutex_unlock(&ring_lock);
    if (!fresh)
        free(r);
    return fresh ? RTC_OPENED : RTC_EXISTS;
}

/* Removes the ring and releases every frame still in it. */
static void rtc_ring_close(uint64_t stream)
{
    pthread_mutex_lock(&ring_lock);
    ring **slot = ring_slot(stream);
    ring *r = *slot;
    if (r) {
        *slot = r->next;
        ring_held -= r->count;
    }
    pthread_mutex_unlock(&ring_lock);
    if (!r)
        return;
    for (uint32_t i = 0; i < r->count; i++)
        lk_drop_handle(r->frames[(r->head + i) % r->capacity].handle);
    free(r);
}

static int rtc_ring_pop(uint64_t stream, rtc_audio_frame *out)
{
    int got = 0;
    pthread_mutex_lock(&ring_lock);
    ring *r = *ring_slot(stream);
    if (r && r->count) {
        *out = r->frames[r->head];
        r->head = (r->head + 1) % r->capacity;
        r->count--;
        ring_held--;
        got = 1;
    }
    pthread_mutex_unlock(&ring_lock);
    return got;
}

/* 1: frames are waiting (do not park); 0: the next frame will write to the wake fd. */
static int rtc_ring_park(uint64_t stream)
{
    int ready = 1;
    pthread_mutex_lock(&ring_lock);
    ring *r = *ring_slot(stream);
    if (r && r->count == 0) {
        r->parked = true;
        ready = 0;
    }
    pthread_mutex_unlock(&ring_lock);
    return ready;
}

static uint64_t rtc_ring_dropped(uint64_t stream)
{
    pthread_mutex_lock(&ring_lock);
    ring *r = *ring_slot(stream);
    uint64_t dropped = r ? r->dropped : 0;
    pthread_mutex_unlock(&ring_lock);
    return dropped;
}

static uint32_t rtc_ring_count(uint64_t stream)
{
    pthread_mutex_lock(&ring_lock);
    ring *r = *ring_slot(stream);
    uint32_t count = r ? r->count : 0;
    pthread_mutex_unlock(&ring_lock);
    return count;
}

static uint64_t rtc_ring_held(void)
{
    pthread_mutex_lock(&ring_lock);
    uint64_t held = ring_held;
    pthread_mutex_unlock(&ring_lock);
    return held;
}

/* Returns true when the frame was buffered (Python need not see the event). */
static bool buffer_frame(uint64_t stream, const rtc_audio_frame *frame)
{
    uint64_t evicted = 0;
    pthread_mutex_lock(&ring_lock);
    ring *r = *ring_slot(stream);
    if (r) {
        if (r->count == r->capacity) {
            evicted = r->frames[r->head].handle;
            r->head = (r->head + 1) % r->capacity;
            r->count--;
            r->dropped++;
            ring_held--;
        }
        r->frames[(r->head + r->count) % r->capacity] = *frame;
        r->count++;
        ring_held++;
        if (r->parked) { /* under the lock: the fd stays open until the ring is closed */
            uint64_t one = 1;
            r->parked = false;
            ssize_t ignored = write(r->wake_fd, &one, sizeof one);
            (void)ignored; /* EAGAIN: the counter is already non-zero, the consumer wakes */
        }
    }
    pthread_mutex_unlock(&ring_lock);
    if (evicted)
        lk_drop_handle(evicted);
    return r != NULL;
}

/* --- the event callback ------------------------------------------------------------------
   Python is entered only through call_python. rtc_dispose (at interpreter exit) closes that
   door and waits for the threads already inside: a native thread that took the GIL during
   interpreter finalization would be ended by CPython mid-callback, and a forced unwind
   through the Rust frames beneath it aborts the process. */

static pthread_mutex_t python_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t python_left = PTHREAD_COND_INITIALIZER;
static int python_callers;
static bool python_closed;

static void call_python(const uint8_t *data, size_t len)
{
    pthread_mutex_lock(&python_lock);
    bool closed = python_closed;
    if (!closed)
        python_callers++;
    pthread_mutex_unlock(&python_lock);
    if (closed)
        return;
    rtc_on_event(data, len);
    pthread_mutex_lock(&python_lock);
    if (--python_callers == 0)
        pthread_cond_broadcast(&python_left);
    pthread_mutex_unlock(&python_lock);
}

/* Called with the GIL released (cffi): the threads inside Python can finish. */
static void rtc_close_callbacks(void)
{
    pthread_mutex_lock(&python_lock);
    python_closed = true;
    while (python_callers)
        pthread_cond_wait(&python_left, &python_lock);
    pthread_mutex_unlock(&python_lock);
}

static void rtc_dispose(void)
{
    rtc_close_callbacks();
    lk_dispose();
}

static void on_native_event(const uint8_t *data, size_t len)
{
    uint32_t field;
    reader body;
    if (event_body(data, len, &field, &body)) {
        if (field == capture_field && capture_field) {
            capture_result result;
            if (read_capture_callback(body, &result)) {
                settle_capture(&result);
                return;
            }
        } else if (field == audio_event_field && audio_event_field) {
            uint64_t stream;
            rtc_audio_frame frame;
            if (received_audio_frame(body, &stream, &frame) &&
                (buffer_frame(stream, &frame) || observe_tick(stream, &frame)))
                return;
        }
    }
    call_python(data, len);
}

static void rtc_initialize(bool capture_logs, const char *sdk, const char *sdk_version)
{
    lk_initialize(on_native_event, capture_logs, sdk, sdk_version);
}
