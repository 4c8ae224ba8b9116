/*
 * json.c - JSON string literals (RFC 8259 §7): the two mandatory escapes,
 * the short forms for common control bytes, \u00XX for the rest. Bytes at
 * or above 0x80 pass through (UTF-8 stays UTF-8). Then the writers of
 * object members, `"key": value`, separated by ", ".
 */
#include "arb/json.h"

#include <inttypes.h>

void arb_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

void arb_json_key(FILE *out, const char *key, int *first)
{
    if (!*first)
        fputs(", ", out);
    *first = 0;
    arb_json_string(out, key);
    fputs(": ", out);
}

void arb_json_kv_str(FILE *out, const char *key, const char *value, int *first)
{
    arb_json_key(out, key, first);
    arb_json_string(out, value);
}

void arb_json_kv_int(FILE *out, const char *key, int64_t value, int *first)
{
    arb_json_key(out, key, first);
    fprintf(out, "%" PRId64, value);
}

void arb_json_kv_bool(FILE *out, const char *key, int value, int *first)
{
    arb_json_key(out, key, first);
    fputs(value ? "true" : "false", out);
}
