/*
 * surgery._wire: C++'s deterministic map order, applied in place to serialized protobuf bytes.
 *
 * protobuf-python (upb) and protobuf C++ both sort map entries when serializing
 * deterministically, but not the same way: upb puts a string after its extensions and
 * integers in descending order, C++ sorts keys with std::less. TensorFlow's fingerprint.pb
 * hashes C++'s bytes, so surgery.wire.canonicalize walks upb's bytes and permutes the entries
 * of every map into C++'s order. Entry lengths never change, so neither does any enclosing
 * length prefix.
 *
 * The walk is guided by a schema table built in Python from the message descriptors
 * (surgery.wire._table): one bytes object of little-endian int32 codes per message type,
 * indexed by field number. A code is 0 for a field that is not a message, or whose message
 * can hold no map; otherwise bit 0 says the field is a map, bit 1 that its message (the entry
 * type, for a map) can hold maps and is walked, bits 2-4 the key's kind and bits 8 up the
 * index of that message type in the table.
 *
 * This is the hot loop of every edit's fingerprint (a small model's bytes hold thousands of
 * map entries: NodeDef.attr on every node). tests/wire_reference.py is the same walk in
 * Python: the tests require both to give the same bytes, or the same error, on any input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef __SIZEOF_INT128__
#error "surgery._wire needs a compiler with 128-bit integers (GCC or Clang on a 64-bit target)"
#endif

enum { VARINT = 0, FIXED64 = 1, LENGTH = 2, FIXED32 = 5 };
enum { CODE_MAP = 1, CODE_WALK = 2 };
/* How a map key compares: as bytes, or as the integer the declared key type reads it as. */
enum { KEY_TEXT = 1, KEY_UNSIGNED = 2, KEY_SIGNED64 = 3, KEY_SIGNED32 = 4, KEY_ZIGZAG = 5 };

#define MAX_DEPTH 512               /* message nesting; upb parses at most 100 levels */
#define NOGIL_THRESHOLD (64 * 1024) /* inputs at least this large are walked without the GIL */

typedef struct {
    const int32_t *codes;
    Py_ssize_t count;
} Type;

typedef struct {
    size_t start, end; /* the entry's field: from its tag to the end of its payload */
} Entry;

typedef struct {
    size_t start, end;
    size_t key_start, key_len; /* KEY_TEXT: where the key's bytes are */
    __int128 number;           /* the other kinds: the key's value */
} Keyed;

typedef struct {
    unsigned char *buf;
    const Type *types;
    Py_ssize_t ntypes;
    Entry *run; /* the pending map runs of every level, a stack */
    size_t run_len, run_cap;
    Keyed *keyed;
    size_t keyed_cap;
    unsigned char *scratch;
    size_t scratch_cap;
    const char *error; /* a malformed input: the message for surgery.wire.WireError */
    int wire_type;     /* for "unsupported wire type %d" */
    int no_memory;
} Walk;

typedef struct {
    uint64_t number;
    int wire_type;
    size_t field_start, value_start, value_end;
} Field;

static int
read_varint(Walk *w, size_t *pos, size_t end, uint64_t *value)
{
    uint64_t result = 0;
    for (int shift = 0;; shift += 7) {
        if (*pos >= end || shift > 63) {
            w->error = "truncated or overlong varint";
            return -1;
        }
        unsigned char byte = w->buf[(*pos)++];
        result |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *value = result;
            return 0;
        }
    }
}

/* The field at *pos (which must be below end); *pos moves past it. */
static int
next_field(Walk *w, size_t *pos, size_t end, Field *f)
{
    uint64_t tag, length, ignored;
    f->field_start = *pos;
    if (read_varint(w, pos, end, &tag) < 0)
        return -1;
    f->number = tag >> 3;
    f->wire_type = (int)(tag & 7);
    if (f->number == 0) {
        w->error = "field number 0";
        return -1;
    }
    switch (f->wire_type) {
    case VARINT:
        f->value_start = *pos;
        if (read_varint(w, pos, end, &ignored) < 0)
            return -1;
        f->value_end = *pos;
        break;
    case LENGTH:
        if (read_varint(w, pos, end, &length) < 0)
            return -1;
        f->value_start = *pos;
        if (length > end - *pos) {
            w->error = "field runs past the end of its message";
            return -1;
        }
        f->value_end = *pos + (size_t)length;
        break;
    case FIXED64:
    case FIXED32:
        f->value_start = *pos;
        if ((f->wire_type == FIXED64 ? 8 : 4) > end - *pos) {
            w->error = "field runs past the end of its message";
            return -1;
        }
        f->value_end = *pos + (f->wire_type == FIXED64 ? 8 : 4);
        break;
    default:
        w->error = "unsupported wire type";
        w->wire_type = f->wire_type;
        return -1;
    }
    *pos = f->value_end;
    return 0;
}

static void *
grow(Walk *w, void *array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return array;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need)
        cap2 *= 2;
    void *bigger = realloc(array, cap2 * size);
    if (bigger == NULL) {
        w->no_memory = 1;
        return NULL;
    }
    *cap = cap2;
    return bigger;
}

/* The key of the entry payload [start, end): its first field 1 of the key's wire kind. */
static int
entry_key(Walk *w, size_t start, size_t end, int kind, Keyed *k)
{
    size_t pos = start;
    k->key_start = 0;
    k->key_len = 0;
    k->number = 0;
    while (pos < end) {
        Field f;
        if (next_field(w, &pos, end, &f) < 0)
            return -1;
        if (f.number != 1 || (f.wire_type == LENGTH) != (kind == KEY_TEXT))
            continue; /* a key of the wrong wire type (a corrupt entry kept as unknown) */
        if (kind == KEY_TEXT) {
            k->key_start = f.value_start;
            k->key_len = f.value_end - f.value_start;
            return 0;
        }
        uint64_t raw = 0;
        if (f.wire_type == VARINT) {
            size_t at = f.value_start;
            if (read_varint(w, &at, f.value_end, &raw) < 0)
                return -1;
        } else {
            for (size_t i = f.value_end; i > f.value_start; i--)
                raw = (raw << 8) | w->buf[i - 1];
        }
        __int128 value = (__int128)raw;
        if (kind == KEY_ZIGZAG)
            value = (__int128)(raw >> 1) ^ -(__int128)(raw & 1);
        else if (kind == KEY_SIGNED64 && raw >= (UINT64_C(1) << 63))
            value -= (__int128)1 << 64;
        else if (kind == KEY_SIGNED32 && raw >= (UINT64_C(1) << 31))
            value -= (__int128)1 << 32;
        k->number = value;
        return 0;
    }
    return 0; /* no key: the default, "" or 0 */
}

/* Whether entry a's key orders before entry b's (C++ std::less on the key). */
static int
key_less(const Keyed *a, const Keyed *b, const unsigned char *buf, int text)
{
    if (!text)
        return a->number < b->number;
    size_t common = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = common ? memcmp(buf + a->key_start, buf + b->key_start, common) : 0;
    return c < 0 || (c == 0 && a->key_len < b->key_len);
}

/* A stable merge sort of a[0..n) by key, with tmp[0..n) as scratch. */
static void
sort_keyed(Keyed *a, Keyed *tmp, size_t n, const unsigned char *buf, int text)
{
    if (n < 2)
        return;
    size_t half = n / 2;
    sort_keyed(a, tmp, half, buf, text);
    sort_keyed(a + half, tmp, n - half, buf, text);
    size_t i = 0, j = half, k = 0;
    while (i < half && j < n)
        tmp[k++] = key_less(&a[j], &a[i], buf, text) ? a[j++] : a[i++];
    while (i < half)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

/* Put the run of map entries above `base` of the stack into key order, then drop them. */
static int
flush(Walk *w, size_t base, int kind)
{
    size_t count = w->run_len - base;
    if (count > 1) {
        Keyed *keyed = grow(w, w->keyed, &w->keyed_cap, 2 * count, sizeof *keyed);
        if (keyed == NULL)
            return -1;
        w->keyed = keyed;
        for (size_t i = 0; i < count; i++) {
            Entry *e = &w->run[base + i];
            size_t pos = e->start;
            Field outer;
            if (next_field(w, &pos, e->end, &outer) < 0)
                return -1;
            keyed[i].start = e->start;
            keyed[i].end = e->end;
            if (entry_key(w, outer.value_start, e->end, kind, &keyed[i]) < 0)
                return -1;
        }
        sort_keyed(keyed, keyed + count, count, w->buf, kind == KEY_TEXT);
        size_t first = w->run[base].start, total = w->run[w->run_len - 1].end - first;
        unsigned char *scratch = grow(w, w->scratch, &w->scratch_cap, total, 1);
        if (scratch == NULL)
            return -1;
        w->scratch = scratch;
        size_t at = 0;
        for (size_t i = 0; i < count; i++) {
            memcpy(scratch + at, w->buf + keyed[i].start, keyed[i].end - keyed[i].start);
            at += keyed[i].end - keyed[i].start;
        }
        memcpy(w->buf + first, scratch, total);
    }
    w->run_len = base;
    return 0;
}

static int
walk(Walk *w, size_t start, size_t end, Py_ssize_t type_index, int depth)
{
    if (depth > MAX_DEPTH) {
        w->error = "messages nested too deeply";
        return -1;
    }
    const Type *type = &w->types[type_index];
    size_t base = w->run_len, pos = start;
    uint64_t run_number = 0; /* 0: no run (field numbers start at 1) */
    int run_kind = 0;
    while (pos < end) {
        Field f;
        if (next_field(w, &pos, end, &f) < 0)
            return -1;
        int32_t code = f.number < (uint64_t)type->count ? type->codes[f.number] : 0;
        if (code == 0 || f.wire_type != LENGTH) {
            if (flush(w, base, run_kind) < 0)
                return -1;
            run_number = 0;
            continue;
        }
        if ((code & CODE_WALK) && walk(w, f.value_start, f.value_end, code >> 8, depth + 1) < 0)
            return -1;
        if (code & CODE_MAP) {
            if (run_number != f.number) {
                if (flush(w, base, run_kind) < 0)
                    return -1;
                run_number = f.number;
                run_kind = (code >> 2) & 7;
            }
            Entry *run = grow(w, w->run, &w->run_cap, w->run_len + 1, sizeof *run);
            if (run == NULL)
                return -1;
            w->run = run;
            w->run[w->run_len].start = f.field_start;
            w->run[w->run_len].end = f.value_end;
            w->run_len++;
        } else {
            if (flush(w, base, run_kind) < 0)
                return -1;
            run_number = 0;
        }
    }
    return flush(w, base, run_kind);
}

/* Read the table into `types`; -1 with an exception set if it is malformed. */
static int
read_table(PyObject *table, Py_ssize_t root, Type **types, Py_ssize_t *ntypes)
{
    if (!PyTuple_Check(table)) {
        PyErr_SetString(PyExc_TypeError, "the table must be a tuple of bytes");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(table);
    if (root < 0 || root >= n) {
        PyErr_SetString(PyExc_ValueError, "the root type is not in the table");
        return -1;
    }
    *types = PyMem_Calloc((size_t)n, sizeof **types);
    if (*types == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *codes = PyTuple_GET_ITEM(table, i);
        if (!PyBytes_Check(codes) || PyBytes_GET_SIZE(codes) % 4) {
            PyErr_SetString(PyExc_TypeError, "each table entry must be bytes of int32 codes");
            goto fail;
        }
        (*types)[i].codes = (const int32_t *)PyBytes_AS_STRING(codes);
        (*types)[i].count = PyBytes_GET_SIZE(codes) / 4;
        for (Py_ssize_t j = 0; j < (*types)[i].count; j++) {
            int32_t code = (*types)[i].codes[j];
            if (code < 0 || ((code & CODE_WALK) && (code >> 8) >= n)) {
                PyErr_SetString(PyExc_ValueError, "a table code names a type that is not in the table");
                goto fail;
            }
        }
    }
    *ntypes = n;
    return 0;
fail:
    PyMem_Free(*types);
    *types = NULL;
    return -1;
}

static PyObject *
wire_canonicalize(PyObject *module, PyObject *args)
{
    Py_buffer view;
    PyObject *table;
    Py_ssize_t root;
    if (!PyArg_ParseTuple(args, "w*O!n:canonicalize", &view, &PyTuple_Type, &table, &root))
        return NULL;
    Walk w = {0};
    if (read_table(table, root, (Type **)&w.types, &w.ntypes) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    w.buf = view.buf;
    int status;
    /* The table's bytes live as long as `table`, which the caller holds for the whole call. */
    if (view.len >= NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        status = walk(&w, 0, (size_t)view.len, root, 0);
        Py_END_ALLOW_THREADS
    } else {
        status = walk(&w, 0, (size_t)view.len, root, 0);
    }
    free(w.run);
    free(w.keyed);
    free(w.scratch);
    PyMem_Free((void *)w.types);
    PyBuffer_Release(&view);
    if (w.no_memory)
        return PyErr_NoMemory();
    if (status < 0) {
        if (w.error != NULL && strcmp(w.error, "unsupported wire type") == 0)
            return PyUnicode_FromFormat("unsupported wire type %d", w.wire_type);
        return PyUnicode_FromString(w.error);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"canonicalize", wire_canonicalize, METH_VARARGS,
     "canonicalize(buf, table, root) -> None or str\n\n"
     "Sort the map entries of the serialized message in the writable buffer `buf` (of table type\n"
     "`root`) into C++'s deterministic order, in place. Returns None, or the reason the bytes are\n"
     "not a well-formed message (`buf` is then partly reordered)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "surgery._wire", "C++'s deterministic map order for serialized protobuf bytes.",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__wire(void)
{
    return PyModule_Create(&module_def);
}
