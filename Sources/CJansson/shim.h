// Umbrella header for jansson (Debian: libjansson-dev). Only JSONValues imports it.
#ifndef CSSD_CJANSSON_SHIM_H
#define CSSD_CJANSSON_SHIM_H
#include <jansson.h>

// jansson's reference counting lives in static inline functions and macros that Swift
// cannot import; these wrappers expose them.
static inline json_t *cssd_json_incref(json_t *json) { return json_incref(json); }
static inline void cssd_json_decref(json_t *json) { json_decref(json); }
static inline int cssd_json_object_set_new(json_t *object, const char *key, json_t *value) {
    return json_object_set_new(object, key, value);
}
static inline int cssd_json_array_append_new(json_t *array, json_t *value) {
    return json_array_append_new(array, value);
}
#endif
