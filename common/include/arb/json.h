/*
 * json.h - the one JSON string writer the programs share (arb-bench,
 * arb-cache): quotes, backslashes and control bytes escaped, so any text
 * (a path, a compile log) stays valid JSON.
 */
#ifndef ARB_JSON_H
#define ARB_JSON_H

#include <stdio.h>

/* Write s (NULL as "") as a JSON string literal. */
void arb_json_string(FILE *out, const char *s);

#endif /* ARB_JSON_H */
