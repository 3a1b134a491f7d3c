/* Run-time binding to livekit_ffi: dlopen + dlsym, so the extension needs no
   link-time dependency on wherever the `livekit` wheel put the library. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

static void rtc_on_event(const uint8_t *data, size_t len);

typedef void (*lk_callback)(const uint8_t *, size_t);
static uint64_t (*lk_request)(const uint8_t *, size_t, const uint8_t **, size_t *);
static bool (*lk_drop_handle)(uint64_t);
static void (*lk_initialize)(lk_callback, bool, const char *, const char *);
static void (*lk_dispose)(void);

/* --- Audio capture completions -------------------------------------------------------
   A successful CaptureAudioFrameCallback is recorded here on the native thread, with no
   GIL and no Python: the producer's next capture finds it with one call. Only a completion
   Python waits for (rtc_capture_watch) or one carrying an error goes on to Python. */

#define SLOTS 4096 /* ids are unique and one capture per source is in flight */
static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cap_cond = PTHREAD_COND_INITIALIZER;
static uint64_t cap_done[SLOTS];
static uint64_t cap_watched[SLOTS];
static int cap_sleepers = 0;
static uint32_t cap_field = 0; /* FfiEvent field number of capture_audio_frame */

static void rtc_capture_field(int field_number) { cap_field = (uint32_t)field_number; }

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return true;
        }
    }
    return false;
}

/* True for an FfiEvent{capture_audio_frame{async_id, no error}}; sets *async_id. */
static bool successful_capture(const uint8_t *data, size_t len, uint64_t *async_id)
{
    const uint8_t *p = data, *end = data + len;
    uint64_t key, size;
    if (cap_field == 0 || !read_varint(&p, end, &key) || key != ((uint64_t)cap_field << 3 | 2))
        return false;
    if (!read_varint(&p, end, &size) || size > (uint64_t)(end - p))
        return false;
    end = p + size;
    bool found = false;
    while (p < end) {
        if (!read_varint(&p, end, &key))
            return false;
        if (key == (1 << 3 | 0)) { /* async_id */
            if (!read_varint(&p, end, async_id))
                return false;
            found = true;
        } else {
            return false; /* an error string, or a field this parser does not know */
        }
    }
    return found;
}

static int rtc_capture_wait(uint64_t async_id, int64_t timeout_us)
{
    size_t slot = async_id % SLOTS;
    pthread_mutex_lock(&cap_lock);
    if (cap_done[slot] != async_id && timeout_us > 0) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += (long)(timeout_us % 1000000) * 1000;
        deadline.tv_sec += timeout_us / 1000000 + deadline.tv_nsec / 1000000000;
        deadline.tv_nsec %= 1000000000;
        cap_sleepers++;
        while (cap_done[slot] != async_id) {
            if (pthread_cond_timedwait(&cap_cond, &cap_lock, &deadline) == ETIMEDOUT)
                break;
        }
        cap_sleepers--;
    }
    int done = cap_done[slot] == async_id;
    pthread_mutex_unlock(&cap_lock);
    return done;
}

/* From now on the completion of async_id goes to Python too; returns 1 if it came already. */
static int rtc_capture_watch(uint64_t async_id)
{
    size_t slot = async_id % SLOTS;
    pthread_mutex_lock(&cap_lock);
    int done = cap_done[slot] == async_id;
    if (!done)
        cap_watched[slot] = async_id;
    pthread_mutex_unlock(&cap_lock);
    return done;
}

static void on_native_event(const uint8_t *data, size_t len)
{
    uint64_t async_id;
    if (successful_capture(data, len, &async_id)) {
        size_t slot = async_id % SLOTS;
        pthread_mutex_lock(&cap_lock);
        bool watched = cap_watched[slot] == async_id;
        cap_done[slot] = async_id;
        if (cap_sleepers)
            pthread_cond_broadcast(&cap_cond);
        pthread_mutex_unlock(&cap_lock);
        if (!watched)
            return;
    }
    rtc_on_event(data, len);
}

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

static void rtc_initialize(bool capture_logs, const char *sdk, const char *sdk_version)
{
    lk_initialize(on_native_event, capture_logs, sdk, sdk_version);
}

static void rtc_dispose(void) { lk_dispose(); }

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
