/* The C layer (ffi/rtc_trio_ffi.c) tested as C, under ASan+UBSan or TSan: see .ci/c_checks.

   The harness compiles the C layer itself (#include), with stubs in place of the native
   library (lk_request, lk_drop_handle) and of Python (rtc_on_event), and runs one mode:
     fuzz DIR N SEED [KEPT]
                        N mutations of real event bytes (the .bin files in DIR, from
                        make_seeds.py) fed to on_native_event, the callback the native threads
                        call, with rings and capture records open: the tables stay consistent,
                        only the two fast-path events are kept from Python, every frame handle
                        a ring took is popped or dropped exactly once, no record is parked
                        once its flight ended. KEPT: a file to list
                        every event kept from Python with what C read from it, for
                        check_kept.py to compare with protobuf's own decoder
     oracle DIR N SEED  N generated frame events and capture operations whose outcome is
                        known: a frame is buffered exactly when it is complete and within
                        bounds, with exactly the values written; a completion changes exactly
                        its own source's record and never goes to Python; a source's eventfd
                        is written exactly when a flight it parked on ends (or on wake_all); a
                        failure is reported by settle exactly once, parked or not
     threads DIR N SEED native-like threads completing captures and buffering frames while
                        others capture, pop, park, open and close rings and records: every
                        frame handle ends exactly once, every capture failure reaches its
                        source exactly once (or its source closed first), also when its
                        waiter parked and left; a parked waiter is always woken, and nobody
                        else
     units DIR          result codes (allocation failures injected), ring wrap-around and
                        wake-ups, capture wake-ups (parked, left, not parked, wake_all,
                        closed), the monotonic timed wait, a record closed under a waiter
     encode DIR N SEED  prints N encode_capture results for check_encode.py
   DIR/fields holds the protocol's field numbers. A failed check prints FAIL and exits 1;
   a sanitizer finding aborts (-fno-sanitize-recover). */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Injected into the C layer: allocation failures on demand, and a count of reads of any
   clock but the monotonic one (its timed waits must not follow the wall clock). */
static atomic_int failing_allocs;
static atomic_int other_clock_reads;

void *harness_calloc(size_t count, size_t size);
int harness_clock_gettime(clockid_t clock, struct timespec *now);

#define calloc harness_calloc
#define clock_gettime harness_clock_gettime
#include "../../ffi/rtc_trio_ffi.c"
#undef calloc
#undef clock_gettime

void *harness_calloc(size_t count, size_t size)
{
    int left = atomic_load(&failing_allocs);
    while (left > 0 && !atomic_compare_exchange_weak(&failing_allocs, &left, left - 1))
        ;
    return left > 0 ? NULL : calloc(count, size);
}

int harness_clock_gettime(clockid_t clock, struct timespec *now)
{
    if (clock != CLOCK_MONOTONIC)
        atomic_fetch_add(&other_clock_reads, 1);
    return clock_gettime(clock, now);
}

/* --- checks, randomness, time ------------------------------------------------------------ */

static void fail(const char *file, int line, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

typedef struct {
    uint64_t state;
} rng;

static rng seeded(uint64_t seed)
{
    rng r = {seed * 0x9E3779B97F4A7C15u + 0x2545F4914F6CDD1Du};
    return r;
}

static uint64_t rand64(rng *r) /* xorshift64* */
{
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return r->state * 0x2545F4914F6CDD1Du;
}

static uint64_t below(rng *r, uint64_t n) { return n ? rand64(r) % n : 0; }

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* --- stubs: the native library and Python ------------------------------------------------ */

#define REQUEST_HANDLES (UINT64_C(0xABC) << 52)
static atomic_ullong requests_sent, requests_dropped, frame_drops;
static _Thread_local uint64_t open_request; /* the response rtc_request_discard will drop */
static _Thread_local bool forwarded;        /* the event fed last went on to Python */
static bool (*accept_request)(const uint8_t *data, size_t len); /* false: refuse it */
static void (*frame_dropped)(uint64_t handle);
static void (*python_event)(const uint8_t *data, size_t len);

static uint64_t stub_request(const uint8_t *data, size_t len, const uint8_t **res_ptr, size_t *res_len)
{
    *res_ptr = NULL;
    *res_len = 0;
    if (accept_request && !accept_request(data, len))
        return 0;
    open_request = REQUEST_HANDLES + atomic_fetch_add(&requests_sent, 1);
    return open_request;
}

static bool stub_drop_handle(uint64_t handle)
{
    CHECK(handle != 0, "handle 0 was dropped");
    if (handle == open_request) {
        open_request = 0;
        atomic_fetch_add(&requests_dropped, 1);
        return true;
    }
    atomic_fetch_add(&frame_drops, 1);
    if (frame_dropped)
        frame_dropped(handle);
    return true;
}

static void rtc_on_event(const uint8_t *data, size_t len)
{
    forwarded = true;
    if (python_event)
        python_event(data, len);
}

/* Leaves stale, plausible values where on_native_event's locals will be: 1 is a valid
   rate, channel count and length, so a field read uninitialised passes for one. */
static __attribute__((noinline)) void paint_stack(void)
{
    volatile uint32_t paint[2048];
    for (size_t i = 0; i < 2048; i++)
        paint[i] = 1;
    (void)paint[0];
}

/* Feeds an event as a native thread would, from a heap copy of exactly its size (ASan
   reports any read past it). Returns true when it went on to Python. */
static bool feed(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len);
    CHECK(copy != NULL, "out of memory");
    if (len)
        memcpy(copy, data, len);
    forwarded = false;
    paint_stack();
    on_native_event(copy, len);
    free(copy);
    return forwarded;
}

/* The eventfd's counter, reset to 0 (0: nothing was written since the last read). */
static uint64_t wakeups(int fd)
{
    uint64_t count = 0;
    if (read(fd, &count, sizeof count) != (ssize_t)sizeof count)
        return 0; /* EAGAIN: not written */
    return count;
}

static int new_eventfd(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(fd >= 0, "eventfd failed");
    return fd;
}

/* --- protobuf writing, independent of the layer's own encoder but for put_varint ---------- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} wbuf;

static void w_raw(wbuf *o, const void *p, size_t n)
{
    CHECK(o->n + n <= sizeof o->b, "event too large");
    if (n)
        memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void w_varint(wbuf *o, uint64_t v)
{
    uint8_t tmp[10];
    w_raw(o, tmp, (size_t)(put_varint(tmp, v) - tmp));
}

static void w_uint(wbuf *o, uint32_t field, uint64_t v)
{
    w_varint(o, (uint64_t)field << 3);
    w_varint(o, v);
}

static void w_bytes(wbuf *o, uint32_t field, const void *p, size_t n)
{
    w_varint(o, (uint64_t)field << 3 | 2);
    w_varint(o, n);
    w_raw(o, p, n);
}

static void w_msg(wbuf *o, uint32_t field, const wbuf *m) { w_bytes(o, field, m->b, m->n); }

/* An unknown field of wire type `wire` (0, 1, 2 or 5). */
static void w_unknown_typed(wbuf *o, rng *r, uint32_t field, uint32_t wire)
{
    static const uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    switch (wire) {
    case 0: w_uint(o, field, rand64(r)); break;
    case 1: w_varint(o, (uint64_t)field << 3 | 1); w_raw(o, junk, 8); break;
    case 2: w_bytes(o, field, junk, below(r, 9)); break;
    default: w_varint(o, (uint64_t)field << 3 | 5); w_raw(o, junk, 4); break;
    }
}

static void w_unknown(wbuf *o, rng *r, uint32_t field)
{
    static const uint32_t types[] = {0, 1, 2, 5};
    w_unknown_typed(o, r, field, types[below(r, 4)]);
}

static void frame_event(wbuf *o, uint64_t stream, uint64_t handle, uint64_t data_ptr,
                        uint32_t channels, uint32_t rate, uint32_t samples)
{
    wbuf info = {0}, id = {0}, owned = {0}, received = {0}, event = {0};
    w_uint(&info, 1, data_ptr);
    w_uint(&info, 2, channels);
    w_uint(&info, 3, rate);
    w_uint(&info, 4, samples);
    w_uint(&id, 1, handle);
    w_msg(&owned, 1, &id);
    w_msg(&owned, 2, &info);
    w_msg(&received, 1, &owned);
    w_uint(&event, 1, stream);
    w_msg(&event, 2, &received);
    o->n = 0;
    w_msg(o, audio_event_field, &event);
}

static void capture_event(wbuf *o, uint64_t async_id, const char *error)
{
    wbuf done = {0};
    w_uint(&done, 1, async_id);
    if (error)
        w_bytes(&done, 2, error, strlen(error));
    o->n = 0;
    w_msg(o, capture_field, &done);
}

/* The value of field `field` (a varint) of the message `field_of` in `data`'s top level. */
static bool nested_varint(const uint8_t *data, size_t len, uint32_t field_of, uint32_t field, uint64_t *out)
{
    reader r = {data, data + len}, body;
    uint64_t key;
    bool found = false;
    while (r.p < r.end) {
        if (!read_varint(&r, &key))
            return false;
        if (key == ((uint64_t)field_of << 3 | 2)) {
            if (!read_message(&r, &body))
                return false;
            while (body.p < body.end) {
                if (!read_varint(&body, &key))
                    return false;
                if (key == ((uint64_t)field << 3)) {
                    if (!read_varint(&body, out))
                        return false;
                    found = true;
                } else if (!skip_field(&body, key)) {
                    return false;
                }
            }
        } else if (!skip_field(&r, key)) {
            return false;
        }
    }
    return found;
}

/* What Python can view: the bounds of rtc_trio/_audio_frame.py, written out again here. */
static bool viewable(uint64_t data_ptr, uint32_t channels, uint32_t rate, uint32_t samples)
{
    return data_ptr != 0 && channels >= 1 && channels <= 16 && rate >= 1 && rate <= 384000 &&
           samples >= 1 && (uint64_t)samples <= (uint64_t)rate * 10;
}

/* --- consistency of the layer's tables ------------------------------------------------------ */

static void check_rings(void)
{
    pthread_mutex_lock(&ring_lock);
    uint64_t held = 0;
    for (size_t b = 0; b < RING_BUCKETS; b++) {
        for (ring *r = ring_buckets[b]; r; r = r->next) {
            CHECK(r->stream % RING_BUCKETS == b, "ring of stream %" PRIu64 " in bucket %zu", r->stream, b);
            CHECK(r->capacity > 0 && r->count <= r->capacity && r->head < r->capacity,
                  "ring of stream %" PRIu64 ": head %u count %u capacity %u", r->stream, r->head, r->count, r->capacity);
            for (uint32_t i = 0; i < r->count; i++) {
                const rtc_audio_frame *f = &r->frames[(r->head + i) % r->capacity];
                CHECK(f->handle && viewable(f->data_ptr, f->num_channels, f->sample_rate, f->samples_per_channel),
                      "a ring holds an invalid frame");
            }
            held += r->count;
        }
    }
    CHECK(held == ring_held, "ring_held %" PRIu64 ", rings hold %" PRIu64, ring_held, held);
    pthread_mutex_unlock(&ring_lock);
}

static void check_captures(void)
{
    size_t in_flight = 0, indexed = 0;
    pthread_mutex_lock(&capture_lock);
    for (size_t b = 0; b < CAPTURE_BUCKETS; b++) {
        for (capture *c = by_source[b]; c; c = c->next_source) {
            CHECK(c->source % CAPTURE_BUCKETS == b, "record of source %" PRIu64 " in bucket %zu", c->source, b);
            CHECK(c->state == RTC_CAPTURE_IDLE || c->state == RTC_CAPTURE_IN_FLIGHT || c->state == RTC_CAPTURE_FAILED,
                  "record in state %d", c->state);
            CHECK(c->state == RTC_CAPTURE_IN_FLIGHT || !c->parked, "a settled record is parked");
            if (c->state == RTC_CAPTURE_IN_FLIGHT) {
                in_flight++;
                capture *x = by_flight[c->async_id % CAPTURE_BUCKETS];
                while (x && x != c)
                    x = x->next_flight;
                CHECK(x == c, "a record in flight is not indexed by its async id");
            }
        }
    }
    for (size_t b = 0; b < CAPTURE_BUCKETS; b++) {
        for (capture *c = by_flight[b]; c; c = c->next_flight) {
            CHECK(c->async_id % CAPTURE_BUCKETS == b && c->state == RTC_CAPTURE_IN_FLIGHT,
                  "the in-flight index holds a settled record");
            CHECK(*source_slot(c->source) == c, "the in-flight index holds a closed record");
            indexed++;
        }
    }
    for (size_t b = 0; b < CAPTURE_BUCKETS; b++)
        for (capture *c = by_observer[b]; c; c = c->next_observer)
            CHECK(c->observer % CAPTURE_BUCKETS == b && *source_slot(c->source) == c,
                  "the observer index holds a misplaced or closed record");
    pthread_mutex_unlock(&capture_lock);
    CHECK(indexed == in_flight, "%zu records in flight, %zu indexed", in_flight, indexed);
}

static size_t records_open(void)
{
    size_t n = 0;
    pthread_mutex_lock(&capture_lock);
    for (size_t b = 0; b < CAPTURE_BUCKETS; b++)
        for (capture *c = by_source[b]; c; c = c->next_source)
            n++;
    pthread_mutex_unlock(&capture_lock);
    return n;
}

static const int16_t samples[3840] = {0};

/* --- fuzz: mutated real events --------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t len;
} seed;

#define MAX_SEEDS 256
#define FUZZ_STREAMS 16
#define FUZZ_SOURCES 8

static size_t load_seeds(const char *dir, seed *seeds)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    CHECK(n >= 0, "cannot read %s", dir);
    size_t count = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        if (len > 4 && strcmp(name + len - 4, ".bin") == 0 && count < MAX_SEEDS) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, name);
            FILE *f = fopen(path, "rb");
            CHECK(f != NULL, "cannot open %s", path);
            seeds[count].data = malloc(4096);
            seeds[count].len = fread(seeds[count].data, 1, 4096, f);
            fclose(f);
            count++;
        }
        free(names[i]);
    }
    free(names);
    CHECK(count > 0, "no seeds in %s", dir);
    return count;
}

static void load_fields(const char *dir)
{
    char path[4096];
    int capture_event_no, audio_event_no, capture_request_no;
    snprintf(path, sizeof path, "%s/fields", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    CHECK(fscanf(f, "%d %d %d", &capture_event_no, &audio_event_no, &capture_request_no) == 3, "bad %s", path);
    fclose(f);
    rtc_fast_fields(capture_event_no, audio_event_no, capture_request_no);
}

static size_t interesting_varint(rng *r, uint8_t *out)
{
    static const uint64_t values[] = {0, 1, 2, 16, 17, 32, 33, 127, 128, 384000, 384001, 3840001,
                                      UINT32_MAX, UINT64_C(1) << 32, (UINT64_C(1) << 32) + 1,
                                      UINT64_C(1) << 63, UINT64_MAX};
    if (below(r, 10) == 0) { /* overlong: 11 bytes */
        memset(out, 0xff, 10);
        out[10] = 1;
        return 11;
    }
    if (below(r, 10) == 0) { /* 10 bytes, more bits than 64 */
        memset(out, 0xff, 9);
        out[9] = 0x7f;
        return 10;
    }
    return (size_t)(put_varint(out, values[below(r, sizeof values / sizeof *values)]) - out);
}

static size_t mutate(rng *r, const seed *from, const seed *seeds, size_t count, uint8_t *out, size_t cap)
{
    static const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a};
    size_t n = from->len;
    memcpy(out, from->data, n);
    for (int rounds = (int)below(r, 5); rounds; rounds--) { /* 0: the seed as it is */
        switch (below(r, 9)) {
        case 0: /* flip a bit */
            if (n) out[below(r, n)] ^= (uint8_t)(1u << below(r, 8));
            break;
        case 1: /* set a byte */
            if (n) out[below(r, n)] = bytes[below(r, sizeof bytes)];
            break;
        case 2: /* nudge a byte: a length off by one */
            if (n) {
                size_t at = below(r, n);
                out[at] = (uint8_t)(out[at] + (below(r, 2) ? 1 : 0xff));
            }
            break;
        case 3: /* insert a byte */
            if (n < cap) {
                size_t at = below(r, n + 1);
                memmove(out + at + 1, out + at, n - at);
                out[at] = (uint8_t)rand64(r);
                n++;
            }
            break;
        case 4: /* delete a run */
            if (n) {
                size_t at = below(r, n), k = 1 + below(r, n - at);
                memmove(out + at, out + at + k, n - at - k);
                n -= k;
            }
            break;
        case 5: /* truncate */
            n = below(r, n + 1);
            break;
        case 6: { /* splice: this one's head, another's tail */
            const seed *other = &seeds[below(r, count)];
            size_t keep = below(r, n + 1), at = below(r, other->len + 1), take = other->len - at;
            if (keep + take > cap)
                take = cap - keep;
            memcpy(out + keep, other->data + at, take);
            n = keep + take;
            break;
        }
        case 7: { /* write an interesting varint */
            uint8_t v[11];
            size_t k = interesting_varint(r, v), at = below(r, n + 1);
            if (at + k <= cap) {
                memcpy(out + at, v, k);
                if (at + k > n)
                    n = at + k;
            }
            break;
        }
        default: /* repeat a run */
            if (n && 2 * n <= cap) {
                size_t at = below(r, n), k = 1 + below(r, n - at);
                memmove(out + at + k, out + at, n - at);
                n += k;
            }
            break;
        }
    }
    return n;
}

/* Seeds no real event has yet: unknown fields of each wire type closing each message, as a
   later protocol version could send (lengths off by one then cut into them). */
static size_t synthetic_seeds(seed *seeds, size_t count)
{
    for (uint32_t wire = 0; wire < 4 && count < MAX_SEEDS; wire++) {
        static const uint32_t types[] = {0, 1, 2, 5};
        rng r = seeded(wire);
        wbuf info = {0}, id = {0}, owned = {0}, received = {0}, event = {0}, done = {0}, top = {0};
        w_uint(&info, 1, 0x7f0000001000);
        w_uint(&info, 2, 2);
        w_uint(&info, 3, 48000);
        w_uint(&info, 4, 480);
        w_unknown_typed(&info, &r, 9, types[wire]);
        w_uint(&id, 1, 700 + wire);
        w_msg(&owned, 1, &id);
        w_msg(&owned, 2, &info);
        w_unknown_typed(&owned, &r, 5, 2);
        w_msg(&received, 1, &owned);
        w_uint(&event, 1, 1 + wire);
        w_msg(&event, 2, &received);
        w_msg(&top, audio_event_field, &event);
        seeds[count].data = malloc(top.n);
        memcpy(seeds[count].data, top.b, top.n);
        seeds[count++].len = top.n;
        w_uint(&done, 1, 1001 + wire);
        w_bytes(&done, 2, "failed", 6);
        w_unknown_typed(&done, &r, 7, types[wire]);
        top.n = 0;
        w_msg(&top, capture_field, &done);
        seeds[count].data = malloc(top.n);
        memcpy(seeds[count].data, top.b, top.n);
        seeds[count++].len = top.n;
    }
    return count;
}

static uint64_t fuzz_popped;

static void fuzz_ring_op(rng *r, const int *fds)
{
    uint64_t stream = 1 + below(r, FUZZ_STREAMS);
    rtc_audio_frame f;
    switch (below(r, 6)) {
    case 0:
    case 1:
        if (rtc_ring_pop(stream, &f)) {
            CHECK(f.handle && viewable(f.data_ptr, f.num_channels, f.sample_rate, f.samples_per_channel),
                  "popped an invalid frame");
            fuzz_popped++;
        }
        break;
    case 2: rtc_ring_park(stream); break;
    case 3: (void)rtc_ring_dropped(stream); break;
    case 4: { /* reopen, with another capacity */
        rtc_ring_close(stream);
        CHECK(rtc_ring_open(stream, 1 + (uint32_t)below(r, 4), fds[stream]) == RTC_OPENED, "reopen failed");
        uint64_t count;
        ssize_t ignored = read(fds[stream], &count, sizeof count); /* drain the wake-ups */
        (void)ignored;
        break;
    }
    default: rtc_ring_close(stream); break; /* closed until reopened */
    }
}

static int capture_fds[FUZZ_SOURCES];

static void fuzz_capture_op(rng *r)
{
    uint64_t i = below(r, FUZZ_SOURCES), source = 101 + i;
    char error[CAPTURE_ERROR_MAX];
    int state;
    switch (below(r, 3)) {
    case 0: /* parks when in flight; the wake-ups are drained now and then */
        state = rtc_capture_settle(source, error, sizeof error);
        CHECK(state != RTC_CAPTURE_CLOSED, "a record vanished");
        if (state == RTC_CAPTURE_FAILED)
            CHECK(memchr(error, 0, sizeof error) != NULL, "an error message without its end");
        if (below(r, 2))
            (void)wakeups(capture_fds[i]);
        break;
    case 1: /* the async ids the seeds complete */
        state = rtc_capture_audio(source, 1001 + i, 0, samples, 1, 48000, 480);
        CHECK(state == RTC_CAPTURE_SENT || state == RTC_CAPTURE_IN_FLIGHT || state == RTC_CAPTURE_FAILED,
              "capture returned %d", state);
        break;
    default:
        rtc_capture_close(source);
        CHECK(rtc_capture_open(source, capture_fds[i]) == RTC_OPENED, "reopen failed");
        break;
    }
}

static void hex(FILE *out, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(out, "%02x", data[i]);
    if (len == 0)
        fputc('-', out);
}

/* One line per event C kept from Python: what it read, for check_kept.py. */
static void list_kept(FILE *out, const uint8_t *data, size_t len, uint32_t field, reader body)
{
    fputs(field == capture_field ? "C " : "F ", out);
    hex(out, data, len);
    if (field == capture_field) {
        capture_result result;
        CHECK(read_capture_callback(body, &result), "kept an unreadable completion");
        fprintf(out, " %" PRIu64 " ", result.async_id);
        hex(out, result.error, result.error_len);
    } else {
        uint64_t stream;
        rtc_audio_frame f;
        CHECK(received_audio_frame(body, &stream, &f), "kept an unreadable frame");
        fprintf(out, " %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u %u", stream, f.handle, f.data_ptr,
                f.num_channels, f.sample_rate, f.samples_per_channel);
    }
    fputc('\n', out);
}

static void fuzz(const char *dir, uint64_t iterations, uint64_t seed_value, const char *kept_path)
{
    FILE *kept = kept_path ? fopen(kept_path, "w") : NULL;
    CHECK(kept || !kept_path, "cannot write %s", kept_path);
    static seed seeds[MAX_SEEDS];
    static uint8_t buf[8192];
    size_t real = load_seeds(dir, seeds), count = synthetic_seeds(seeds, real);
    rng r = seeded(seed_value);
    int fds[FUZZ_STREAMS + 1];
    for (uint64_t s = 1; s <= FUZZ_STREAMS; s++) {
        fds[s] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        CHECK(rtc_ring_open(s, 1 + (uint32_t)(s % 4), fds[s]) == RTC_OPENED, "open failed");
    }
    for (uint64_t i = 0; i < FUZZ_SOURCES; i++) {
        capture_fds[i] = new_eventfd();
        CHECK(rtc_capture_open(101 + i, capture_fds[i]) == RTC_OPENED, "open failed");
        CHECK(rtc_capture_audio(101 + i, 1001 + i, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "capture failed");
    }
    uint64_t buffered = 0, passed_on = 0, completions = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        size_t len = mutate(&r, &seeds[below(&r, count)], seeds, count, buf, sizeof buf);
        uint64_t held = rtc_ring_held(), drops = frame_drops;
        uint32_t field = 0;
        reader body;
        bool single = event_body(buf, len, &field, &body);
        bool to_python = feed(buf, len);
        if (!to_python && kept)
            list_kept(kept, buf, len, field, body);
        if (to_python) {
            passed_on++;
            CHECK(rtc_ring_held() == held && frame_drops == drops, "an event passed on to Python touched a ring");
        } else if (single && field == audio_event_field) {
            buffered++;
            bool evicted = frame_drops == drops + 1;
            CHECK(frame_drops <= drops + 1 && rtc_ring_held() == held + !evicted, "a frame kept from Python is not in a ring");
        } else {
            CHECK(single && field == capture_field, "an event the C layer does not handle was kept from Python");
            completions++;
            CHECK(rtc_ring_held() == held && frame_drops == drops, "a capture completion touched a ring");
        }
        if (below(&r, 4) == 0)
            fuzz_ring_op(&r, fds);
        if (below(&r, 4) == 0)
            fuzz_capture_op(&r);
        if (it % 1024 == 0) {
            check_rings();
            check_captures();
        }
    }
    check_rings();
    check_captures();
    for (uint64_t s = 1; s <= FUZZ_STREAMS; s++) {
        rtc_ring_close(s);
        close(fds[s]);
    }
    for (uint64_t i = 0; i < FUZZ_SOURCES; i++) {
        rtc_capture_close(101 + i);
        close(capture_fds[i]);
    }
    CHECK(rtc_ring_held() == 0, "frames left after every ring closed");
    CHECK(buffered == fuzz_popped + frame_drops, "%" PRIu64 " frames buffered, %" PRIu64 " popped, %llu dropped",
          buffered, fuzz_popped, (unsigned long long)frame_drops);
    CHECK(records_open() == 0 && requests_sent == requests_dropped, "records or request handles left");
    for (size_t i = 0; i < count; i++)
        free(seeds[i].data);
    if (kept)
        fclose(kept);
    printf("fuzz: %" PRIu64 " events mutated from %zu real and %zu synthetic seeds: %" PRIu64 " frames buffered, %" PRIu64
           " completions settled, %" PRIu64 " passed on\n", iterations, real, count - real, buffered, completions, passed_on);
}

/* --- oracle: generated events with known outcomes ------------------------------------------- */

#define ORACLE_STREAMS 8 /* rings on the odd ones */
#define ORACLE_SOURCES 6
#define ORACLE_HANDLES (UINT64_C(1) << 44)

static uint8_t *oracle_fates;
static uint64_t oracle_next_handle, oracle_buffered;
static bool refuse_next;

static void oracle_fate(uint64_t handle)
{
    CHECK(handle >= ORACLE_HANDLES && handle < oracle_next_handle, "unknown handle %" PRIu64 " dropped", handle);
    oracle_fates[handle - ORACLE_HANDLES]++;
}

static bool oracle_accept(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    bool accept = !refuse_next;
    refuse_next = false;
    return accept;
}

static uint64_t oracle_value(rng *r)
{
    static const uint64_t values[] = {0, 1, 2, 10, 15, 16, 17, 31, 32, 33, 160, 480, 48000, 384000, 384001,
                                      3840000, 3840001, UINT32_MAX, UINT64_C(1) << 32,
                                      (UINT64_C(1) << 32) + 1, (UINT64_C(1) << 32) + 48000,
                                      UINT64_C(1) << 63};
    switch (below(r, 4)) {
    case 0: return rand64(r);
    case 1: return below(r, 500000);
    default: return values[below(r, sizeof values / sizeof *values)];
    }
}

static void oracle_frame(rng *r)
{
    /* info{data_ptr=1, num_channels=2, sample_rate=3, samples_per_channel=4}: decoys and
       unknown fields first, then some fields in a random order; value[] is what a protobuf
       decoder reads (the last occurrence of a field; 0 if none) */
    uint64_t value[5] = {0};
    wbuf info = {0}, id = {0}, owned = {0}, received = {0}, event = {0}, top = {0};
    for (int k = (int)below(r, 4); k; k--) {
        uint32_t field = 1 + (uint32_t)below(r, 4);
        if (below(r, 2)) {
            w_unknown(&info, r, 5 + (uint32_t)below(r, 20));
        } else if (below(r, 2)) {
            value[field] = oracle_value(r);
            w_uint(&info, field, value[field]);
        } else { /* a known field with another wire type: skipped, as protobuf does */
            w_bytes(&info, field, "abc", 3);
        }
    }
    int order[4] = {1, 2, 3, 4};
    for (int i = 3; i > 0; i--) {
        int j = (int)below(r, (uint64_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    /* half the frames aim at valid: each value then most likely within bounds */
    bool aim = below(r, 2);
    uint64_t want[5];
    want[1] = below(r, 20) ? rand64(r) | 1 : 0;
    want[2] = aim && below(r, 8) ? 1 + below(r, 32) : oracle_value(r);
    want[3] = aim && below(r, 8) ? 1 + below(r, 384000) : oracle_value(r);
    want[4] = aim && below(r, 8) ? 1 + below(r, (uint32_t)want[3] * UINT64_C(10) + 1) : oracle_value(r);
    for (int i = 0; i < 4; i++) {
        int field = order[i];
        if (below(r, aim ? 40 : 7) == 0)
            continue; /* absent, unless a decoy set it */
        value[field] = want[field];
        w_uint(&info, (uint32_t)field, value[field]);
    }
    bool has_handle = below(r, 10) != 0;
    uint64_t handle = has_handle && below(r, 20) ? oracle_next_handle++ : 0;
    w_uint(&id, 1, handle);
    bool handle_first = below(r, 2);
    if (has_handle && handle_first)
        w_msg(&owned, 1, &id);
    w_msg(&owned, 2, &info);
    if (has_handle && !handle_first)
        w_msg(&owned, 1, &id);
    if (below(r, 10) == 0)
        w_bytes(&owned, 3 + (uint32_t)below(r, 4), "xyz", 3);
    w_msg(&received, 1, &owned);
    uint64_t stream = below(r, 10) ? 1 + below(r, ORACLE_STREAMS) : 0;
    bool stream_first = below(r, 2);
    if (stream_first && (stream || below(r, 2)))
        w_uint(&event, 1, stream);
    w_msg(&event, 2, &received);
    if (!stream_first && (stream || below(r, 2)))
        w_uint(&event, 1, stream);
    w_msg(&top, audio_event_field, &event);

    uint64_t data_ptr = value[1];
    uint32_t channels = (uint32_t)value[2], rate = (uint32_t)value[3],
             length = (uint32_t)value[4]; /* protobuf truncates uint32 fields */
    bool valid = stream % 2 == 1 && has_handle && handle && viewable(data_ptr, channels, rate, length);
    bool passed_on = feed(top.b, top.n);
    CHECK(passed_on == !valid, "a frame (stream %" PRIu64 ", handle %s, ptr %" PRIx64 ", %u ch, %u Hz, %u samples) was %s",
          stream, has_handle ? (handle ? "set" : "0") : "absent", data_ptr, channels, rate, length,
          passed_on ? "passed on to Python" : "buffered");
    if (valid) {
        rtc_audio_frame f;
        CHECK(rtc_ring_pop(stream, &f), "the buffered frame is not in its ring");
        oracle_buffered++;
        CHECK(f.handle == handle && f.data_ptr == data_ptr && f.num_channels == channels &&
              f.sample_rate == rate && f.samples_per_channel == length, "the buffered frame differs from the event");
    }
    CHECK(rtc_ring_held() == 0, "a ring holds more than was buffered");
    if (has_handle && handle)
        oracle_fate(handle); /* popped, or Python's to drop */
}

typedef struct {
    int state;
    uint64_t async_id;
    bool parked; /* settle found the capture in flight: its end writes the fd */
    bool woken;  /* the fd must have been written since it was last read */
    char error[CAPTURE_ERROR_MAX];
} record_model;

static record_model models[ORACLE_SOURCES];
static int model_fds[ORACLE_SOURCES];

/* With the model's record leaving flight (completion or close): a parked waiter is woken. */
static void model_wake(record_model *m)
{
    if (m->parked)
        m->woken = true;
    m->parked = false;
}
static uint64_t stale_ids[64], next_async_id = 5000;
static size_t stale_count;

static void random_text(rng *r, char *out, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(' ' + below(r, 95));
    out[len] = '\0';
}

static void oracle_completion(rng *r)
{
    int target = -1;
    uint64_t async_id = next_async_id + 1000000 + below(r, 1000); /* nobody's */
    uint64_t pick = below(r, 10);
    if (pick < 6) {
        int k = (int)below(r, ORACLE_SOURCES);
        if (models[k].state == RTC_CAPTURE_IN_FLIGHT) {
            target = k;
            async_id = models[k].async_id;
        }
    } else if (pick < 8 && stale_count) {
        async_id = stale_ids[below(r, stale_count)]; /* its source closed since */
    }
    bool has_id = below(r, 10) != 0;
    char error[400] = "";
    bool has_error = below(r, 2);
    if (has_error)
        random_text(r, error, below(r, 4) == 0 ? 300 : below(r, 40)); /* may be empty */
    wbuf done = {0}, top = {0};
    bool error_first = below(r, 2);
    if (below(r, 5) == 0)
        w_unknown(&done, r, 3 + (uint32_t)below(r, 10));
    if (has_error && error_first)
        w_bytes(&done, 2, error, strlen(error));
    if (has_id)
        w_uint(&done, 1, async_id);
    if (has_error && !error_first)
        w_bytes(&done, 2, error, strlen(error));
    w_msg(&top, capture_field, &done);

    bool passed_on = feed(top.b, top.n);
    if (!has_id) {
        CHECK(passed_on, "a completion without an async id was kept from Python");
        return;
    }
    CHECK(!passed_on, "a capture completion was passed on to Python");
    if (target < 0)
        return; /* dropped: no record in flight has its id */
    record_model *m = &models[target];
    if (error[0]) { /* recorded, parked or not: settle reports it */
        m->state = RTC_CAPTURE_FAILED;
        size_t n = strnlen(error, CAPTURE_ERROR_MAX - 1); /* what a record keeps */
        memcpy(m->error, error, n);
        m->error[n] = '\0';
    } else {
        m->state = RTC_CAPTURE_IDLE;
    }
    model_wake(m);
}

static void oracle_capture_op(rng *r)
{
    int k = (int)below(r, ORACLE_SOURCES);
    uint64_t source = 201 + (uint64_t)k;
    record_model *m = &models[k];
    char error[CAPTURE_ERROR_MAX];
    int state;
    switch (below(r, 7)) {
    case 0:
    case 1:
        refuse_next = below(r, 10) == 0;
        state = rtc_capture_audio(source, ++next_async_id, 0, samples, 1, 48000, 480);
        if (m->state != RTC_CAPTURE_IDLE) {
            CHECK(state == m->state, "capture returned %d in state %d", state, m->state);
            refuse_next = false;
        } else if (state == RTC_CAPTURE_SENT) {
            CHECK(!refuse_next, "sent a capture that was refused");
            m->state = RTC_CAPTURE_IN_FLIGHT;
            m->async_id = next_async_id;
        } else {
            CHECK(state == RTC_CAPTURE_REFUSED, "capture returned %d", state);
        }
        break;
    case 2:
        state = rtc_capture_settle(source, error, sizeof error);
        CHECK(state == m->state, "settle returned %d in state %d", state, m->state);
        if (state == RTC_CAPTURE_FAILED) {
            CHECK(strcmp(error, m->error) == 0, "the error read back differs");
            m->state = RTC_CAPTURE_IDLE;
        } else if (state == RTC_CAPTURE_IN_FLIGHT) {
            m->parked = true; /* whoever parked may leave (a cancelled wait): nothing changes */
        }
        break;
    case 3:
        CHECK(rtc_capture_wait(source, 0) == m->state, "wait disagrees with the model");
        break;
    case 4: {
        if (m->state == RTC_CAPTURE_IN_FLIGHT && stale_count < 64)
            stale_ids[stale_count++] = m->async_id;
        rtc_capture_close(source);
        model_wake(m);
        bool woken = m->woken;
        memset(m, 0, sizeof *m);
        m->woken = woken;
        CHECK(rtc_capture_open(source, model_fds[k]) == RTC_OPENED, "reopen failed");
        break;
    }
    case 5:
        if (below(r, 8) == 0) { /* as after a native panic */
            rtc_capture_wake_all();
            for (int i = 0; i < ORACLE_SOURCES; i++)
                model_wake(&models[i]);
            break;
        }
        /* fall through */
    default:
        oracle_completion(r);
        break;
    }
    for (int i = 0; i < ORACLE_SOURCES; i++) {
        CHECK(rtc_capture_wait(201 + (uint64_t)i, 0) == models[i].state, "source %d: state %d, model %d",
              i, rtc_capture_wait(201 + (uint64_t)i, 0), models[i].state);
        uint64_t count = wakeups(model_fds[i]);
        CHECK(count == models[i].woken, "source %d: its eventfd was written %" PRIu64 " times, the model says %d",
              i, count, models[i].woken);
        models[i].woken = false;
    }
}

static void oracle(uint64_t iterations, uint64_t seed_value)
{
    rng r = seeded(seed_value);
    oracle_fates = calloc(iterations + 1, 1);
    oracle_next_handle = ORACLE_HANDLES;
    frame_dropped = oracle_fate;
    accept_request = oracle_accept;
    for (uint64_t s = 1; s <= ORACLE_STREAMS; s += 2)
        CHECK(rtc_ring_open(s, 4, -1) == RTC_OPENED, "open failed");
    for (uint64_t k = 0; k < ORACLE_SOURCES; k++) {
        model_fds[k] = new_eventfd();
        CHECK(rtc_capture_open(201 + k, model_fds[k]) == RTC_OPENED, "open failed");
    }
    for (uint64_t it = 0; it < iterations; it++) {
        if (below(&r, 2))
            oracle_frame(&r);
        else
            oracle_capture_op(&r);
        if (it % 256 == 0) {
            check_rings();
            check_captures();
        }
    }
    for (uint64_t s = 1; s <= ORACLE_STREAMS; s += 2)
        rtc_ring_close(s);
    for (uint64_t k = 0; k < ORACLE_SOURCES; k++) {
        rtc_capture_close(201 + k);
        close(model_fds[k]);
    }
    check_captures();
    for (uint64_t h = ORACLE_HANDLES; h < oracle_next_handle; h++)
        CHECK(oracle_fates[h - ORACLE_HANDLES] == 1, "handle %" PRIu64 " ended %d times", h, oracle_fates[h - ORACLE_HANDLES]);
    CHECK(records_open() == 0 && requests_sent == requests_dropped, "records or request handles left");
    free(oracle_fates);
    frame_dropped = NULL;
    accept_request = NULL;
    printf("oracle: %" PRIu64 " generated frame events and capture operations; %" PRIu64 " frame handles "
           "accounted for, %" PRIu64 " frames buffered\n", iterations, oracle_next_handle - ORACLE_HANDLES, oracle_buffered);
}

/* --- threads: the layer from several threads at once ----------------------------------------- */

#define T_STREAMS 24
#define T_FRAME_THREADS 3
#define T_CONSUMERS 2
#define T_CAPTURERS 3
#define T_COMPLETERS 2
#define FRAME_HANDLES (UINT64_C(1) << 40)

static _Atomic uint8_t *fates;
static uint64_t frames_per_thread, captures_per_thread;
static atomic_int frame_threads_done, capturers_done;
static _Thread_local uint64_t feeding; /* the frame handle being fed, if any */

static void fate(uint64_t handle)
{
    CHECK(handle >= FRAME_HANDLES && handle - FRAME_HANDLES < frames_per_thread * T_FRAME_THREADS,
          "unknown frame handle %" PRIx64, handle);
    atomic_fetch_add(&fates[handle - FRAME_HANDLES], 1);
}

static void *frame_thread(void *arg)
{
    uint64_t t = (uint64_t)(uintptr_t)arg;
    rng r = seeded(1000 + t);
    wbuf o;
    for (uint64_t i = t * frames_per_thread; i < (t + 1) * frames_per_thread; i++) {
        uint64_t handle = FRAME_HANDLES + i;
        frame_event(&o, 1 + below(&r, T_STREAMS), handle, handle, 1 + (uint32_t)(i % 2), 48000, 480);
        feeding = handle;
        feed(o.b, o.n); /* buffered, or passed on to Python, which owns it then */
        feeding = 0;
        if (i % 64 == 0)
            sched_yield();
    }
    atomic_fetch_add(&frame_threads_done, 1);
    return NULL;
}

static void *consumer_thread(void *arg)
{
    rng r = seeded(2000 + (uint64_t)(uintptr_t)arg);
    rtc_audio_frame f;
    while (atomic_load(&frame_threads_done) < T_FRAME_THREADS) {
        uint64_t stream = 1 + below(&r, T_STREAMS);
        if (rtc_ring_pop(stream, &f)) {
            uint64_t i = f.handle - FRAME_HANDLES;
            CHECK(f.data_ptr == f.handle && f.num_channels == 1 + i % 2 && f.sample_rate == 48000 &&
                  f.samples_per_channel == 480, "a popped frame is not the one buffered");
            fate(f.handle);
        } else if (below(&r, 4) == 0) {
            rtc_ring_park(stream);
        }
    }
    return NULL;
}

static int ring_fds[T_STREAMS + 1];

static void *ring_toggler(void *arg)
{
    (void)arg;
    rng r = seeded(3000);
    while (atomic_load(&frame_threads_done) < T_FRAME_THREADS) {
        uint64_t stream = 1 + below(&r, T_STREAMS);
        if (ring_fds[stream] >= 0) {
            rtc_ring_close(stream); /* drops what it holds; no write to the fd after this */
            close(ring_fds[stream]);
            ring_fds[stream] = -1;
        } else {
            ring_fds[stream] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            CHECK(rtc_ring_open(stream, 1 + (uint32_t)below(&r, 6), ring_fds[stream]) == RTC_OPENED, "open failed");
        }
        (void)rtc_ring_dropped(1 + below(&r, T_STREAMS));
        sched_yield();
    }
    return NULL;
}

/* Captures: ids name their thread; some fail, some are refused. */
static uint64_t capture_id(uint64_t t, uint64_t n) { return UINT64_C(1) << 62 | t << 40 | n; }
static bool failing(uint64_t id) { return (id & 0xffffffffff) % 97 == 3; }
static bool refused(uint64_t id) { return (id & 0xffffffffff) % 211 == 5; }

static void failure_message(uint64_t id, char *out, size_t size)
{
    int n = snprintf(out, size, "capture %" PRIu64 " failed", id);
    if (id % 2 == 0) /* longer than a record keeps */
        while (n < 300 && (size_t)n + 1 < size)
            out[n++] = '.';
    out[n] = '\0';
}

static pthread_mutex_t bag_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *bag; /* captures sent, not completed yet */
static size_t bag_count;

static bool thread_accept(const uint8_t *data, size_t len)
{
    uint64_t async_id;
    CHECK(nested_varint(data, len, capture_request_field, 3, &async_id), "a request without an async id");
    if (refused(async_id))
        return false;
    pthread_mutex_lock(&bag_lock);
    bag[bag_count++] = async_id;
    pthread_mutex_unlock(&bag_lock);
    return true;
}

static void thread_python(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    CHECK(feeding != 0, "an event other than a frame was passed on to Python");
    fate(feeding); /* a frame: Python's now */
}

/* As AudioSource._settle_pending: until nothing is in flight, a failure counted. A wait is
   sometimes given up after parking (a cancelled task): the outcome then waits in the record
   for the next call. *parked: parked since the fd was last drained (else a wake-up is one
   nobody parked for). Returns false when given up. */
static bool settle(rng *r, uint64_t source, int fd, bool *parked, uint64_t in_flight, uint64_t *observed)
{
    char error[CAPTURE_ERROR_MAX], want[400];
    failure_message(in_flight, want, sizeof want);
    for (;;) {
        if (!*parked)
            CHECK(wakeups(fd) == 0, "source %" PRIu64 "'s eventfd was written, nobody parked", source);
        int state = rtc_capture_settle(source, error, sizeof error);
        if (state == RTC_CAPTURE_IDLE || state == RTC_CAPTURE_FAILED) {
            (void)wakeups(fd); /* a write its flight owed was made before it ended */
            *parked = false;
            if (state == RTC_CAPTURE_FAILED) {
                CHECK(failing(in_flight) && strncmp(error, want, CAPTURE_ERROR_MAX - 1) == 0,
                      "capture %" PRIu64 " failed with \"%s\"", in_flight, error);
                ++*observed;
            }
            return true;
        }
        CHECK(state == RTC_CAPTURE_IN_FLIGHT, "settle returned %d", state);
        *parked = true;
        if (below(r, 4) == 0)
            return false; /* cancelled: the record stays parked */
        struct pollfd p = {fd, POLLIN, 0};
        CHECK(poll(&p, 1, 30000) == 1, "the end of capture %" PRIu64 " never woke its waiter", in_flight);
        CHECK(wakeups(fd) >= 1, "a readable eventfd without a count");
    }
}

static void *capturer_thread(void *arg)
{
    uint64_t t = (uint64_t)(uintptr_t)arg, source = 7000 + t, in_flight = 0;
    uint64_t expected = 0, observed = 0, abandoned = 0;
    bool parked = false;
    int fd = new_eventfd();
    rng r = seeded(4000 + t);
    CHECK(rtc_capture_open(source, fd) == RTC_OPENED, "open failed");
    for (uint64_t n = 1; n <= captures_per_thread; n++) {
        uint64_t async_id = capture_id(t, n);
        for (;;) {
            int64_t timeout_us = below(&r, 3) ? 0 : (int64_t)below(&r, 300);
            int state = rtc_capture_audio(source, async_id, timeout_us, samples, 1, 48000, 480);
            if (state == RTC_CAPTURE_SENT) {
                in_flight = async_id;
                expected += failing(async_id);
                break;
            }
            if (state == RTC_CAPTURE_REFUSED) {
                CHECK(refused(async_id), "capture %" PRIu64 " refused", async_id);
                break;
            }
            CHECK(state == RTC_CAPTURE_IN_FLIGHT || state == RTC_CAPTURE_FAILED, "capture returned %d", state);
            settle(&r, source, fd, &parked, in_flight, &observed);
        }
        if (n % 997 == 0) { /* the source closes with a capture perhaps in flight, perhaps parked */
            if (rtc_capture_wait(source, 0) != RTC_CAPTURE_IDLE && failing(in_flight))
                abandoned++;
            rtc_capture_close(source); /* nothing writes to fd after this */
            (void)wakeups(fd);
            parked = false;
            CHECK(rtc_capture_open(source, fd) == RTC_OPENED, "reopen failed");
        }
    }
    while (rtc_capture_wait(source, 100000) == RTC_CAPTURE_IN_FLIGHT)
        ;
    while (!settle(&r, source, fd, &parked, in_flight, &observed))
        ;
    CHECK(expected == observed + abandoned, "thread %" PRIu64 ": %" PRIu64 " failures sent, %" PRIu64
          " seen, %" PRIu64 " abandoned", t, expected, observed, abandoned);
    rtc_capture_close(source);
    close(fd);
    atomic_fetch_add(&capturers_done, 1);
    return NULL;
}

static void *completer_thread(void *arg)
{
    rng r = seeded(5000 + (uint64_t)(uintptr_t)arg);
    wbuf o;
    char error[400];
    for (;;) {
        pthread_mutex_lock(&bag_lock);
        if (bag_count == 0) {
            bool done = atomic_load(&capturers_done) == T_CAPTURERS;
            pthread_mutex_unlock(&bag_lock);
            if (done)
                break;
            sched_yield();
            continue;
        }
        size_t i = below(&r, bag_count); /* completions overtake each other */
        uint64_t async_id = bag[i];
        bag[i] = bag[--bag_count];
        pthread_mutex_unlock(&bag_lock);
        if (below(&r, 8) == 0)
            sched_yield();
        failure_message(async_id, error, sizeof error);
        capture_event(&o, async_id, failing(async_id) ? error : below(&r, 10) == 0 ? "" : NULL);
        CHECK(!feed(o.b, o.n), "a capture completion was passed on to Python");
        if (below(&r, 50) == 0) { /* a completion of nothing in flight */
            capture_event(&o, UINT64_C(1) << 61 | rand64(&r) >> 4, below(&r, 2) ? "late" : NULL);
            CHECK(!feed(o.b, o.n), "a stray completion was passed on");
        }
        if (below(&r, 64) == 0)
            rtc_capture_wake_all(); /* as after a native panic: wakes only parked waiters */
    }
    return NULL;
}

static void threads(uint64_t scale, uint64_t seed_value)
{
    (void)seed_value; /* each thread seeds itself: the interleaving is the scheduler's */
    frames_per_thread = scale;
    captures_per_thread = scale / 2;
    fates = calloc(frames_per_thread * T_FRAME_THREADS, 1);
    bag = calloc(captures_per_thread * T_CAPTURERS + 1, sizeof *bag);
    frame_dropped = fate;
    python_event = thread_python;
    accept_request = thread_accept;
    for (int s = 0; s <= T_STREAMS; s++)
        ring_fds[s] = -1;
    pthread_t frames[T_FRAME_THREADS], consumers[T_CONSUMERS], toggler, capturers[T_CAPTURERS],
        completers[T_COMPLETERS];
    for (uintptr_t t = 0; t < T_FRAME_THREADS; t++)
        pthread_create(&frames[t], NULL, frame_thread, (void *)t);
    for (uintptr_t t = 0; t < T_CONSUMERS; t++)
        pthread_create(&consumers[t], NULL, consumer_thread, (void *)t);
    pthread_create(&toggler, NULL, ring_toggler, NULL);
    for (uintptr_t t = 0; t < T_CAPTURERS; t++)
        pthread_create(&capturers[t], NULL, capturer_thread, (void *)t);
    for (uintptr_t t = 0; t < T_COMPLETERS; t++)
        pthread_create(&completers[t], NULL, completer_thread, (void *)t);
    for (int t = 0; t < T_FRAME_THREADS; t++)
        pthread_join(frames[t], NULL);
    for (int t = 0; t < T_CONSUMERS; t++)
        pthread_join(consumers[t], NULL);
    pthread_join(toggler, NULL);
    for (int t = 0; t < T_CAPTURERS; t++)
        pthread_join(capturers[t], NULL);
    for (int t = 0; t < T_COMPLETERS; t++)
        pthread_join(completers[t], NULL);
    check_rings();
    check_captures();
    for (uint64_t s = 1; s <= T_STREAMS; s++) {
        rtc_ring_close(s);
        if (ring_fds[s] >= 0)
            close(ring_fds[s]);
    }
    CHECK(rtc_ring_held() == 0, "frames left after every ring closed");
    for (uint64_t i = 0; i < frames_per_thread * T_FRAME_THREADS; i++)
        CHECK(fates[i] == 1, "frame handle %" PRIu64 " ended %d times", FRAME_HANDLES + i, fates[i]);
    CHECK(records_open() == 0 && requests_sent == requests_dropped, "records or request handles left");
    free((void *)fates);
    free(bag);
    frame_dropped = NULL;
    python_event = NULL;
    accept_request = NULL;
    printf("threads: %" PRIu64 " frames and %" PRIu64 " captures; every frame handle ended once, every failure "
           "reached its source\n", frames_per_thread * T_FRAME_THREADS, captures_per_thread * T_CAPTURERS);
}

/* --- units ------------------------------------------------------------------------------------ */

static uint64_t dropped_order[16];
static size_t dropped_count;

static void record_drop(uint64_t handle)
{
    CHECK(dropped_count < 16, "too many drops");
    dropped_order[dropped_count++] = handle;
}

static bool refuse_all(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    return false;
}

static void feed_frame(uint64_t stream, uint64_t handle)
{
    wbuf o;
    frame_event(&o, stream, handle, 0x1000 + handle, 1, 48000, 480);
    CHECK(!feed(o.b, o.n), "frame %" PRIu64 " was not buffered", handle);
}

static void pop_expect(uint64_t stream, uint64_t handle)
{
    rtc_audio_frame f;
    CHECK(rtc_ring_pop(stream, &f) && f.handle == handle && f.data_ptr == 0x1000 + handle,
          "expected frame %" PRIu64, handle);
}

static void unit_rings(void)
{
    CHECK(rtc_ring_open(1, 0, -1) == RTC_BAD_CAPACITY, "capacity 0 accepted");
    atomic_store(&failing_allocs, 1);
    CHECK(rtc_ring_open(1, 3, -1) == RTC_NO_MEMORY, "allocation failure not reported");
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(rtc_ring_open(1, 3, fd) == RTC_OPENED, "open failed");
    CHECK(rtc_ring_open(1, 3, -1) == RTC_EXISTS, "a second ring for a stream");
    atomic_store(&failing_allocs, 1);
    CHECK(rtc_ring_open(2, 3, -1) == RTC_NO_MEMORY, "allocation failure not reported");

    /* wake-ups: parked on an empty ring, the next frame writes the fd */
    CHECK(rtc_ring_park(1) == 0, "parked on an empty ring: must wait");
    feed_frame(1, 10);
    struct pollfd p = {fd, POLLIN, 0};
    uint64_t count = 0;
    CHECK(poll(&p, 1, 0) == 1 && read(fd, &count, sizeof count) == 8 && count == 1, "no wake-up");
    CHECK(rtc_ring_park(1) == 1, "parked with a frame waiting");
    feed_frame(1, 11);
    CHECK(poll(&p, 1, 0) == 0, "a wake-up nobody asked for");
    pop_expect(1, 10);
    pop_expect(1, 11);

    /* wrap-around and drop-oldest: capacity 3 */
    frame_dropped = record_drop;
    for (uint64_t h = 11; h <= 20; h++)
        feed_frame(1, h + 1); /* 12..21 */
    CHECK(rtc_ring_dropped(1) == 7, "dropped %" PRIu64, rtc_ring_dropped(1));
    pop_expect(1, 19);
    pop_expect(1, 20);
    feed_frame(1, 22);
    feed_frame(1, 23);
    pop_expect(1, 21);
    pop_expect(1, 22);
    pop_expect(1, 23);
    rtc_audio_frame f;
    CHECK(!rtc_ring_pop(1, &f), "a frame from nowhere");
    feed_frame(1, 24);
    feed_frame(1, 25);
    rtc_ring_close(1); /* drops what it holds, oldest first */
    rtc_ring_close(1); /* a second close finds nothing */
    frame_dropped = NULL;
    static const uint64_t want[] = {12, 13, 14, 15, 16, 17, 18, 24, 25};
    CHECK(dropped_count == 9 && memcmp(dropped_order, want, sizeof want) == 0, "drops out of order");
    CHECK(rtc_ring_held() == 0, "frames held after close");
    wbuf o;
    frame_event(&o, 1, 26, 0x1000, 1, 48000, 480);
    CHECK(feed(o.b, o.n), "a frame for a closed ring was not passed on");
    close(fd);
}

static atomic_int waiter_state;
static uint64_t waiter_source;

static void *waiter(void *arg)
{
    (void)arg;
    atomic_store(&waiter_state, rtc_capture_wait(waiter_source, 5000000));
    return NULL;
}

static void *late_completer(void *arg)
{
    wbuf o;
    usleep(20000);
    capture_event(&o, (uint64_t)(uintptr_t)arg, NULL);
    CHECK(!feed(o.b, o.n), "a completion was passed on");
    return NULL;
}

static void unit_captures(void)
{
    char error[CAPTURE_ERROR_MAX];
    wbuf o;
    int fd = new_eventfd(), fd8 = new_eventfd();
    atomic_store(&failing_allocs, 1);
    CHECK(rtc_capture_open(5, fd) == RTC_NO_MEMORY, "allocation failure not reported");
    CHECK(rtc_capture_open(5, fd) == RTC_OPENED && rtc_capture_open(5, -1) == RTC_EXISTS, "open codes");
    CHECK(rtc_capture_audio(6, 99, 0, samples, 1, 48000, 480) == RTC_CAPTURE_CLOSED, "captured with no record");

    accept_request = refuse_all;
    CHECK(rtc_capture_audio(5, 100, 0, samples, 1, 48000, 480) == RTC_CAPTURE_REFUSED, "not refused");
    accept_request = NULL;
    CHECK(rtc_capture_wait(5, 0) == RTC_CAPTURE_IDLE, "a refused capture stayed in flight");

    /* the timed wait: a capture that never completes keeps it waiting, on the monotonic clock
       (a condition on another clock than its deadline's returns at once, or never) */
    CHECK(rtc_capture_audio(5, 101, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    double start = now_s();
    CHECK(rtc_capture_wait(5, 50000) == RTC_CAPTURE_IN_FLIGHT, "completed from nowhere");
    double waited = now_s() - start;
    CHECK(waited >= 0.05 && waited < 5, "a 50 ms wait took %.3f s", waited);
    start = now_s();
    CHECK(rtc_capture_audio(5, 102, 30000, samples, 1, 48000, 480) == RTC_CAPTURE_IN_FLIGHT, "sent past one in flight");
    waited = now_s() - start;
    CHECK(waited >= 0.03 && waited < 5, "a 30 ms wait took %.3f s", waited);
    CHECK(atomic_load(&other_clock_reads) == 0, "a timed wait read another clock than the monotonic one");

    /* a failure, its message cut to what the record keeps */
    char long_error[301];
    memset(long_error, 'e', 300);
    long_error[300] = '\0';
    capture_event(&o, 101, long_error);
    CHECK(!feed(o.b, o.n), "a failure was passed on");
    CHECK(wakeups(fd) == 0, "a wake-up nobody parked for");
    CHECK(rtc_capture_audio(5, 102, 0, samples, 1, 48000, 480) == RTC_CAPTURE_FAILED, "sent past a failure");
    CHECK(rtc_capture_settle(5, error, sizeof error) == RTC_CAPTURE_FAILED, "failure not reported");
    CHECK(strlen(error) == CAPTURE_ERROR_MAX - 1 && strspn(error, "e") == CAPTURE_ERROR_MAX - 1, "message mangled");
    CHECK(rtc_capture_settle(5, error, sizeof error) == RTC_CAPTURE_IDLE, "failure reported twice");

    /* parked: the end of the flight writes the eventfd once; the outcome stays in the record */
    CHECK(rtc_capture_audio(5, 103, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    CHECK(rtc_capture_settle(5, error, sizeof error) == RTC_CAPTURE_IN_FLIGHT, "not in flight");
    CHECK(rtc_capture_settle(5, error, sizeof error) == RTC_CAPTURE_IN_FLIGHT, "not in flight");
    CHECK(wakeups(fd) == 0, "woken before the completion");
    capture_event(&o, 103, "parked failure");
    CHECK(!feed(o.b, o.n), "a parked completion was passed on");
    CHECK(wakeups(fd) == 1, "the parked wait was not woken, once");
    /* the waiter left (a cancelled wait) without reading: the next call reports the failure */
    CHECK(rtc_capture_audio(5, 104, 0, samples, 1, 48000, 480) == RTC_CAPTURE_FAILED, "sent past a failure");
    CHECK(rtc_capture_settle(5, error, sizeof error) == RTC_CAPTURE_FAILED && strcmp(error, "parked failure") == 0,
          "the failure of a parked wait was lost");
    CHECK(rtc_capture_settle(5, error, sizeof error) == RTC_CAPTURE_IDLE, "failure reported twice");
    CHECK(wakeups(fd) == 0, "a wake-up nobody parked for");

    /* not parked: the end of the flight writes nothing */
    CHECK(rtc_capture_audio(5, 104, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    capture_event(&o, 104, NULL);
    CHECK(!feed(o.b, o.n), "a completion was passed on");
    CHECK(wakeups(fd) == 0 && rtc_capture_wait(5, 0) == RTC_CAPTURE_IDLE, "a wake-up nobody parked for");

    /* wake_all (after a panic) wakes the parked records only, once, and leaves them in flight */
    CHECK(rtc_capture_open(8, fd8) == RTC_OPENED, "open failed");
    CHECK(rtc_capture_audio(5, 105, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    CHECK(rtc_capture_audio(8, 106, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    CHECK(rtc_capture_settle(5, error, sizeof error) == RTC_CAPTURE_IN_FLIGHT, "not in flight");
    rtc_capture_wake_all();
    rtc_capture_wake_all();
    CHECK(wakeups(fd) == 1 && wakeups(fd8) == 0, "wake_all woke other than the parked records, or twice");
    CHECK(rtc_capture_wait(5, 0) == RTC_CAPTURE_IN_FLIGHT, "wake_all ended a flight");
    capture_event(&o, 105, NULL);
    CHECK(!feed(o.b, o.n) && wakeups(fd) == 0, "woken again after wake_all");

    /* closed while parked: woken; a completion after its source closed writes nothing */
    CHECK(rtc_capture_settle(8, error, sizeof error) == RTC_CAPTURE_IN_FLIGHT, "not in flight");
    rtc_capture_close(8);
    CHECK(wakeups(fd8) == 1, "closed under a parked wait without waking it");
    capture_event(&o, 106, "late");
    CHECK(!feed(o.b, o.n), "a completion for a closed source was passed on");
    CHECK(wakeups(fd8) == 0, "a closed record's eventfd was written");
    CHECK(rtc_capture_audio(5, 107, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    rtc_capture_close(5);
    capture_event(&o, 107, "late");
    CHECK(!feed(o.b, o.n), "a completion for a closed source was passed on");
    CHECK(wakeups(fd) == 0, "a wake-up nobody parked for");
    check_captures();
    close(fd);
    close(fd8);

    /* a record closed under a thread waiting on it */
    pthread_t thread;
    waiter_source = 6;
    CHECK(rtc_capture_open(6, -1) == RTC_OPENED, "open failed");
    CHECK(rtc_capture_audio(6, 108, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    start = now_s();
    pthread_create(&thread, NULL, waiter, NULL);
    usleep(20000);
    rtc_capture_close(6);
    pthread_join(thread, NULL);
    CHECK(atomic_load(&waiter_state) == RTC_CAPTURE_CLOSED && now_s() - start < 4, "the waiter did not see the close");

    /* a completion wakes a waiter */
    CHECK(rtc_capture_open(7, -1) == RTC_OPENED, "open failed");
    CHECK(rtc_capture_audio(7, 109, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    start = now_s();
    pthread_create(&thread, NULL, late_completer, (void *)(uintptr_t)109);
    CHECK(rtc_capture_wait(7, 5000000) == RTC_CAPTURE_IDLE && now_s() - start < 4, "the completion did not wake the wait");
    pthread_join(thread, NULL);
    rtc_capture_close(7);
    CHECK(records_open() == 0 && requests_sent == requests_dropped, "records or request handles left");
}

/* playout: ticks of an observed stream count the queue down, clear_queue clears the
   capture in flight again when it completes, before the next can go out */
static const uint8_t clear_marker[] = {0xE2, 0x01, 0x02, 0x08, 0x14};
static atomic_int clears;

static bool count_clears(const uint8_t *data, size_t len)
{
    if (len == sizeof clear_marker && memcmp(data, clear_marker, len) == 0)
        atomic_fetch_add(&clears, 1);
    return true;
}

static uint64_t playout(uint64_t source, bool park, uint64_t *ticks)
{
    uint64_t out[2] = {0, 0};
    CHECK(rtc_capture_playout(source, park, out) != RTC_CAPTURE_CLOSED, "no record");
    if (ticks)
        *ticks = out[1];
    return out[0];
}

static void tick(uint64_t stream, uint64_t handle)
{
    wbuf o;
    frame_event(&o, stream, handle, (uint64_t)(uintptr_t)samples, 1, 48000, 480);
    CHECK(!feed(o.b, o.n), "a tick of an observed stream went on to Python");
}

static void complete(uint64_t async_id, const char *error)
{
    wbuf o;
    capture_event(&o, async_id, error);
    CHECK(!feed(o.b, o.n), "a completion was passed on");
}

static void unit_playout(void)
{
    char error[CAPTURE_ERROR_MAX];
    wbuf o;
    uint64_t ticks, out[2];
    int fd = new_eventfd();
    accept_request = count_clears;
    CHECK(rtc_capture_observe(20, 900, 480) == RTC_CAPTURE_CLOSED, "observed without a record");
    CHECK(rtc_capture_open(20, fd) == RTC_OPENED, "open failed");
    CHECK(rtc_capture_observe(20, 900, 480) == RTC_OPENED, "observe failed");
    CHECK(rtc_capture_observe(20, 901, 480) == RTC_EXISTS, "a source observed twice");
    frame_event(&o, 902, 7000, (uint64_t)(uintptr_t)samples, 1, 48000, 480);
    CHECK(feed(o.b, o.n), "a frame of a stream nobody observes was not passed on");
    CHECK(rtc_capture_unobserve(21) == RTC_CAPTURE_CLOSED, "unobserved without a record");
    CHECK(rtc_capture_unobserve(20) == RTC_OPENED, "unobserve failed");
    frame_event(&o, 900, 7000, (uint64_t)(uintptr_t)samples, 1, 48000, 480);
    CHECK(feed(o.b, o.n), "a frame of a stream no longer observed was not passed on");
    CHECK(rtc_capture_observe(20, 900, 480) == RTC_OPENED, "observe again failed");

    /* 25 ms: two ticks take a block each, the third finds 5 ms and takes nothing */
    CHECK(rtc_capture_audio(20, 200, 0, samples, 1, 48000, 1200) == RTC_CAPTURE_SENT, "not sent");
    CHECK(playout(20, false, &ticks) == 1200 && ticks == 0, "the capture was not counted");
    unsigned long long drops = atomic_load(&frame_drops);
    for (uint64_t h = 7001; h <= 7003; h++)
        tick(900, h);
    CHECK(playout(20, false, &ticks) == 240 && ticks == 3, "ticks counted wrong");
    CHECK(atomic_load(&frame_drops) == drops + 3, "a tick's frame handle was not released");
    complete(200, NULL);

    /* a failed capture was never queued */
    CHECK(rtc_capture_audio(20, 201, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    CHECK(playout(20, false, NULL) == 720, "not counted");
    complete(201, "failed");
    CHECK(playout(20, false, NULL) == 240, "a failed capture stayed counted");
    CHECK(rtc_capture_settle(20, error, sizeof error) == RTC_CAPTURE_FAILED, "failure lost");

    /* parked on ticks: the next tick writes the eventfd, once */
    playout(20, true, NULL);
    CHECK(wakeups(fd) == 0, "woken before a tick");
    tick(900, 7004);
    CHECK(wakeups(fd) == 1, "a tick did not wake the parked wait");
    tick(900, 7005);
    CHECK(wakeups(fd) == 0, "woken without being parked");

    /* clear with a capture in flight: now, and again at its completion, before the next */
    CHECK(rtc_capture_audio(20, 202, 0, samples, 1, 48000, 960) == RTC_CAPTURE_SENT, "not sent");
    CHECK(rtc_capture_clear(20, clear_marker, sizeof clear_marker) == RTC_CAPTURE_SENT, "clear not sent");
    CHECK(atomic_load(&clears) == 1 && playout(20, false, NULL) == 0, "not cleared");
    CHECK(rtc_capture_audio(20, 203, 0, samples, 1, 48000, 480) == RTC_CAPTURE_IN_FLIGHT, "sent past one in flight");
    complete(202, NULL);
    CHECK(atomic_load(&clears) == 2 && playout(20, false, NULL) == 0, "the capture in flight was not cleared again");
    CHECK(rtc_capture_audio(20, 203, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    complete(203, NULL);
    CHECK(atomic_load(&clears) == 2 && playout(20, false, NULL) == 480, "cleared a later capture");

    /* with nothing in flight: once; a failed clear changes nothing; no room for a long one */
    CHECK(rtc_capture_clear(20, clear_marker, sizeof clear_marker) == RTC_CAPTURE_SENT, "clear not sent");
    CHECK(rtc_capture_audio(20, 204, 0, samples, 1, 48000, 480) == RTC_CAPTURE_SENT, "not sent");
    complete(204, NULL);
    CHECK(atomic_load(&clears) == 3 && playout(20, false, NULL) == 480, "cleared twice");
    accept_request = refuse_all;
    CHECK(rtc_capture_clear(20, clear_marker, sizeof clear_marker) == RTC_CAPTURE_REFUSED, "not refused");
    accept_request = count_clears;
    CHECK(playout(20, false, NULL) == 480, "a refused clear cleared the count");
    uint8_t long_request[CLEAR_REQUEST_MAX + 1] = {0};
    CHECK(rtc_capture_clear(20, long_request, sizeof long_request) == RTC_CAPTURE_REFUSED, "kept a request too long");

    /* closed: its stream's frames go on to Python, nothing is counted or cleared */
    check_captures();
    rtc_capture_close(20);
    frame_event(&o, 900, 7006, (uint64_t)(uintptr_t)samples, 1, 48000, 480);
    CHECK(feed(o.b, o.n), "a frame of a closed source's observer was not passed on");
    CHECK(rtc_capture_clear(20, clear_marker, sizeof clear_marker) == RTC_CAPTURE_CLOSED, "cleared a closed source");
    CHECK(rtc_capture_playout(20, false, out) == RTC_CAPTURE_CLOSED, "playout of a closed source");
    CHECK(wakeups(fd) == 0, "a closed record's eventfd was written");
    CHECK(records_open() == 0 && requests_sent == requests_dropped, "records or request handles left");
    accept_request = NULL;
    close(fd);
}

static void units(void)
{
    unit_rings();
    unit_captures();
    unit_playout();
    check_rings();
    check_captures();
    printf("units: passed\n");
}

/* --- encode ------------------------------------------------------------------------------------ */

static void encode(uint64_t count, uint64_t seed_value)
{
    rng r = seeded(seed_value);
    static const uint64_t edges[] = {0, 1, 127, 128, UINT32_MAX, UINT64_MAX};
    for (uint64_t i = 0; i < count; i++) {
        uint64_t v[6];
        for (int k = 0; k < 6; k++) {
            v[k] = below(&r, 4) ? rand64(&r) >> below(&r, 64) : edges[below(&r, 6)];
            if (k >= 3)
                v[k] = (uint32_t)v[k];
        }
        uint8_t *out = malloc(160); /* rtc_capture_audio's buffer: ASan sees an overflow */
        size_t len = encode_capture(out, v[0], v[1], v[2], (uint32_t)v[3], (uint32_t)v[4], (uint32_t)v[5]);
        CHECK(len <= 160, "encode_capture wrote %zu bytes", len);
        printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " ", v[0], v[1], v[2], v[3], v[4], v[5]);
        for (size_t k = 0; k < len; k++)
            printf("%02x", out[k]);
        printf("\n");
        free(out);
    }
}

int main(int argc, char **argv)
{
    CHECK(argc >= 3, "usage: harness fuzz|oracle|threads|units|encode DIR [N SEED]");
    const char *mode = argv[1];
    uint64_t n = argc > 3 ? strtoull(argv[3], NULL, 10) : 0, seed_value = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    lk_request = stub_request;
    lk_drop_handle = stub_drop_handle;
    load_fields(argv[2]);
    if (strcmp(mode, "fuzz") == 0)
        fuzz(argv[2], n, seed_value, argc > 5 ? argv[5] : NULL);
    else if (strcmp(mode, "oracle") == 0)
        oracle(n, seed_value);
    else if (strcmp(mode, "threads") == 0)
        threads(n, seed_value);
    else if (strcmp(mode, "units") == 0)
        units();
    else if (strcmp(mode, "encode") == 0)
        encode(n, seed_value);
    else
        CHECK(false, "unknown mode %s", mode);
    return 0;
}
