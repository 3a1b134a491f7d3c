/* Run-time binding to livekit_ffi: dlopen + dlsym, so the extension needs no
   link-time dependency on wherever the `livekit` wheel put the library. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static void rtc_on_event(const uint8_t *data, size_t len);

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

static void rtc_initialize(bool capture_logs, const char *sdk, const char *sdk_version)
{
    lk_initialize(rtc_on_event, capture_logs, sdk, sdk_version);
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
