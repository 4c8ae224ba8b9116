/*
 * json.h - the one JSON string writer the programs share (arb-bench,
 * arb-cache): quotes, backslashes and control bytes escaped, so any text
 * (a path, a compile log) stays valid JSON. The key writers print the
 * members of an object as `"key": value`, separated by ", ".
 */
#ifndef ARB_JSON_H
#define ARB_JSON_H

#include <stdint.h>
#include <stdio.h>

/* Write s (NULL as "") as a JSON string literal. */
void arb_json_string(FILE *out, const char *s);

/* Write `"key": ` after a ", " unless *first (which is then cleared); the
 * caller writes the value. */
void arb_json_key(FILE *out, const char *key, int *first);

/* One member: a string, an integer, a boolean. */
void arb_json_kv_str(FILE *out, const char *key, const char *value, int *first);
void arb_json_kv_int(FILE *out, const char *key, int64_t value, int *first);
void arb_json_kv_bool(FILE *out, const char *key, int value, int *first);

#endif /* ARB_JSON_H */
