/*  ctl_table - aligned text tables for skickctl's human output

    Cells are copied; widths are counted in UTF-8 characters so that names
    with accents stay aligned. Rows are kept until printed.
*/
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct ctl_table {
    int ncols;    /* columns */
    char **cells; /* (nrows + 1) * ncols, row 0 the headers */
    int nrows;    /* data rows */
    int cap;      /* rows allocated, headers included */
    bool *right;  /* right-aligned columns */
};

static size_t s_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char) *s & 0xC0) != 0x80)
            n++;
    return n;
}

static char *s_dup(const char *s)
{
    char *d = strdup(s ? s : "-");
    if (!d)
        abort(); /* out of memory in a CLI: nothing sensible to do */
    return d;
}

ctl_table_t *ctl_table_new(int ncols, const char *const *headers)
{
    ctl_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->cap = 16;
    t->cells = calloc((size_t) t->cap * (size_t) ncols, sizeof *t->cells);
    t->right = calloc((size_t) ncols, sizeof *t->right);
    if (!t->cells || !t->right) {
        ctl_table_destroy(&t);
        return NULL;
    }
    for (int i = 0; i < ncols; i++) {
        const char *h = headers[i];
        if (h[0] == '>') {
            t->right[i] = true;
            h++;
        }
        t->cells[i] = s_dup(h);
    }
    return t;
}

void ctl_table_add(ctl_table_t *t, const char *const *cells)
{
    if (!t)
        return;
    if (t->nrows + 1 == t->cap) {
        char **more = realloc(t->cells, (size_t) t->cap * 2 * (size_t) t->ncols * sizeof *more);
        if (!more)
            abort();
        t->cells = more;
        t->cap *= 2;
    }
    t->nrows++;
    for (int i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = s_dup(cells[i]);
}

void ctl_table_print(ctl_table_t *t, FILE *out)
{
    if (!t)
        return;
    size_t *w = calloc((size_t) t->ncols, sizeof *w);
    if (!w)
        return;
    for (int r = 0; r <= t->nrows; r++)
        for (int i = 0; i < t->ncols; i++) {
            size_t n = s_width(t->cells[r * t->ncols + i]);
            if (n > w[i])
                w[i] = n;
        }
    for (int r = 0; r <= t->nrows; r++) {
        for (int i = 0; i < t->ncols; i++) {
            const char *c = t->cells[r * t->ncols + i];
            int pad = (int) (w[i] - s_width(c));
            bool last = i == t->ncols - 1;
            if (t->right[i])
                fprintf(out, "%*s%s", pad, "", c);
            else
                fprintf(out, "%s%*s", c, last ? 0 : pad, "");
            if (!last)
                fputs("  ", out);
        }
        fputc('\n', out);
    }
    free(w);
}

void ctl_table_destroy(ctl_table_t **t_p)
{
    ctl_table_t *t = t_p ? *t_p : NULL;
    if (!t)
        return;
    *t_p = NULL;
    if (t->cells)
        for (int i = 0; i < (t->nrows + 1) * t->ncols; i++)
            free(t->cells[i]);
    free(t->cells);
    free(t->right);
    free(t);
}

const char *ctl_cell(json_object *v, char *buf, size_t len)
{
    if (!v)
        return "-";
    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    if (json_object_is_type(v, json_type_double)) {
        snprintf(buf, len, "%.1f", json_object_get_double(v));
        return buf;
    }
    if (json_object_is_type(v, json_type_array)) {
        /* a list of strings: comma-separated */
        size_t used = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *e = json_object_array_get_idx(v, i);
            const char *s = json_object_is_type(e, json_type_string)
                                ? json_object_get_string(e)
                                : json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN);
            int n = snprintf(buf + used, len - used, "%s%s", i ? "," : "", s);
            if (n < 0 || (size_t) n >= len - used)
                break;
            used += (size_t) n;
        }
        return used ? buf : "-";
    }
    snprintf(buf, len, "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    return buf;
}
