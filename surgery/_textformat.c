/*
 * surgery._textformat: the bytes literals of protobuf's text format, at the speed of memory.
 *
 * A large saved_model.pbtxt holds almost all of its bytes in a few string literals (a constant's
 * tensor_content). surgery.text_holes leaves those literals on disk, as surgery.lazy leaves big
 * fields of a binary model, and these three functions are its loops:
 *
 *   scan     finds the double-quoted literals of at least a given length in a text, fed in
 *            windows (the state between two windows is a tuple), skipping comments and
 *            single-quoted literals, and reports those written exactly as protobuf's printer
 *            writes a bytes field ("canonical": printable ASCII but for " ' and backslash as
 *            they are, \n \r \t \" \' \\, and every other byte as three octal digits);
 *   escape   is that printer's escaping of bytes (text_encoding.CEscape with as_utf8 False);
 *   unescape decodes a canonical literal's content, window by window.
 *
 * Only canonical literals are left on disk: on them protobuf's own unescaping (CUnescape) and
 * this one agree byte for byte, and a literal written any other way is parsed by protobuf.
 * tests/test_text_holes.py checks all three against protobuf's text_format on random bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* The scanner's modes between two bytes. */
enum {
    OUTSIDE = 0,
    COMMENT = 1,
    DOUBLE = 2,        /* in a "..." literal */
    SINGLE = 3,        /* in a '...' literal */
    DOUBLE_ESCAPE = 4, /* just after a backslash in "..." */
    SINGLE_ESCAPE = 5, /* just after a backslash in '...' */
    OCTAL = 6,         /* in a \ooo escape in "..." */
};

/* How protobuf's printer writes each byte value of a bytes field: 1, 2 or 4 characters. */
static char escapes[256][4];
static unsigned char escape_len[256];
/* The bytes that stand for themselves in a canonical literal (not a quote or a backslash). */
static unsigned char plain[256];

static void
init_escapes(void)
{
    for (int c = 0; c < 256; c++) {
        if (c >= 0x20 && c < 0x7f) {
            escapes[c][0] = (char)c;
            escape_len[c] = 1;
        } else {
            escapes[c][0] = '\\';
            escapes[c][1] = (char)('0' + ((c >> 6) & 7));
            escapes[c][2] = (char)('0' + ((c >> 3) & 7));
            escapes[c][3] = (char)('0' + (c & 7));
            escape_len[c] = 4;
        }
    }
    for (int c = 0; c < 256; c++)
        plain[c] = c >= 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '\\';
    const char named[][2] = {{'\t', 't'}, {'\n', 'n'}, {'\r', 'r'}, {'"', '"'}, {'\'', '\''}, {'\\', '\\'}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        unsigned char c = (unsigned char)named[i][0];
        escapes[c][0] = '\\';
        escapes[c][1] = named[i][1];
        escape_len[c] = 2;
    }
}

/* The byte a named escape (\n and the others) stands for, or -1. */
static int
named_escape(unsigned char c)
{
    switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '"': return '"';
    case '\'': return '\'';
    case '\\': return '\\';
    default: return -1;
    }
}

static PyObject *
text_escape(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *in = view.buf;
    size_t size = 0;
    for (Py_ssize_t i = 0; i < view.len; i++)
        size += escape_len[in[i]];
    PyObject *result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    char *out = PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < view.len; i++) {
        unsigned char c = in[i];
        if (escape_len[c] == 1)
            *out = (char)c;
        else
            memcpy(out, escapes[c], escape_len[c]);
        out += escape_len[c];
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return result;
}

/* Decode a canonical escape starting at in[i] (a backslash); returns its length, 0 if it is cut
 * off by the end of the buffer, -1 if it is not canonical. */
static int
decode_escape(const unsigned char *in, Py_ssize_t i, Py_ssize_t len, unsigned char *out)
{
    if (i + 1 >= len)
        return 0;
    int named = named_escape(in[i + 1]);
    if (named >= 0) {
        *out = (unsigned char)named;
        return 2;
    }
    if (i + 3 >= len)
        return 0;
    int value = 0;
    for (int k = 1; k <= 3; k++) {
        unsigned char d = in[i + k];
        if (d < '0' || d > '7')
            return -1;
        value = value * 8 + (d - '0');
    }
    if (value > 0xff || escape_len[value] != 4)
        return -1;
    *out = (unsigned char)value;
    return 4;
}

static PyObject *
text_unescape(PyObject *module, PyObject *args)
{
    Py_buffer view;
    int final;
    if (!PyArg_ParseTuple(args, "y*p:unescape", &view, &final))
        return NULL;
    const unsigned char *in = view.buf;
    Py_ssize_t len = view.len;
    PyObject *result = PyBytes_FromStringAndSize(NULL, len);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    Py_ssize_t i = 0, n = 0;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    while (i < len) {
        unsigned char c = in[i];
        if (c != '\\') {
            if (escape_len[c] != 1) {
                bad = 1;
                break;
            }
            out[n++] = c;
            i++;
            continue;
        }
        int used = decode_escape(in, i, len, out + n);
        if (used <= 0) {
            bad = used < 0 || final;
            break;
        }
        n++;
        i += used;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (bad) {
        Py_DECREF(result);
        PyErr_Format(PyExc_ValueError, "not a literal as protobuf's printer writes it (at byte %zd)", i);
        return NULL;
    }
    if (_PyBytes_Resize(&result, n) < 0)
        return NULL;
    return Py_BuildValue("(Nn)", result, i);
}

/* The scanner's state: mode, where the current "..." literal's content starts, how many bytes it
 * decodes to so far, whether it is canonical, and an octal escape's digits and value so far. */
typedef struct {
    long long mode, start, size, canonical, digits, value;
} Scan;

static PyObject *
text_scan(PyObject *module, PyObject *args)
{
    Py_buffer view;
    long long base, minimum;
    Scan s;
    if (!PyArg_ParseTuple(args, "y*LL(LLLLLL):scan", &view, &base, &minimum, &s.mode, &s.start, &s.size,
                          &s.canonical, &s.digits, &s.value))
        return NULL;
    PyObject *found = PyList_New(0);
    if (found == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *in = view.buf;
    const Py_ssize_t len = view.len;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (s.mode == DOUBLE) {
            /* The bulk of a literal, in locals: printable bytes and whole escapes, each one byte
             * of the value; the state machine below takes the rest (and escapes cut by the end). */
            long long size = s.size, canonical = s.canonical;
            while (i < len) {
                unsigned char c = in[i];
                if (plain[c]) {
                    size++;
                    i++;
                } else if (c == '\\' && i + 3 < len && named_escape(in[i + 1]) >= 0) {
                    size++;
                    i += 2;
                } else if (c == '\\' && i + 3 < len && (in[i + 1] & 0xf8) == '0' && (in[i + 2] & 0xf8) == '0' &&
                           (in[i + 3] & 0xf8) == '0') {
                    int value = ((in[i + 1] - '0') << 6) | ((in[i + 2] - '0') << 3) | (in[i + 3] - '0');
                    if (value > 0xff || escape_len[value] != 4)
                        canonical = 0;
                    size++;
                    i += 4;
                } else {
                    break;
                }
            }
            s.size = size;
            s.canonical = canonical;
            if (i == len)
                break;
        } else if (s.mode == COMMENT) {
            const unsigned char *newline = memchr(in + i, '\n', (size_t)(len - i));
            if (newline == NULL)
                break;
            i = newline - in;
        }
        unsigned char c = in[i];
        switch (s.mode) {
        case OUTSIDE:
            if (c == '#') {
                s.mode = COMMENT;
            } else if (c == '"') {
                s.mode = DOUBLE;
                s.start = base + i + 1;
                s.size = 0;
                s.canonical = 1;
            } else if (c == '\'') {
                s.mode = SINGLE;
            }
            break;
        case COMMENT:
            if (c == '\n')
                s.mode = OUTSIDE;
            break;
        case SINGLE:
            if (c == '\'' || c == '\n')
                s.mode = OUTSIDE;
            else if (c == '\\')
                s.mode = SINGLE_ESCAPE;
            break;
        case SINGLE_ESCAPE:
            s.mode = c == '\n' ? OUTSIDE : SINGLE;
            break;
        case OCTAL:
            if (c >= '0' && c <= '7') {
                s.value = s.value * 8 + (c - '0');
                if (++s.digits == 3) {
                    if (s.value > 0xff || escape_len[s.value] != 4)
                        s.canonical = 0;
                    s.size++;
                    s.mode = DOUBLE;
                }
                break;
            }
            s.canonical = 0; /* fewer than three digits; this byte is read as part of the literal */
            s.size++;
            s.mode = DOUBLE;
            /* fall through */
        case DOUBLE:
            if (c == '"') {
                long long end = base + i;
                if (s.canonical && end - s.start >= minimum) {
                    PyObject *item = Py_BuildValue("(LLL)", s.start, end, s.size);
                    if (item == NULL || PyList_Append(found, item) < 0) {
                        Py_XDECREF(item);
                        Py_DECREF(found);
                        PyBuffer_Release(&view);
                        return NULL;
                    }
                    Py_DECREF(item);
                }
                s.mode = OUTSIDE;
            } else if (c == '\\') {
                s.mode = DOUBLE_ESCAPE;
            } else if (c == '\n') {
                s.mode = OUTSIDE; /* an unterminated literal: protobuf's parser reports it */
            } else {
                if (escape_len[c] != 1)
                    s.canonical = 0;
                s.size++;
            }
            break;
        case DOUBLE_ESCAPE:
            if (c == '\n') {
                s.mode = OUTSIDE;
            } else if (named_escape(c) >= 0) {
                s.size++;
                s.mode = DOUBLE;
            } else if (c >= '0' && c <= '7') {
                s.digits = 1;
                s.value = c - '0';
                s.mode = OCTAL;
            } else {
                s.canonical = 0;
                s.size++;
                s.mode = DOUBLE;
            }
            break;
        }
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(N(LLLLLL))", found, s.mode, s.start, s.size, s.canonical, s.digits, s.value);
}

static PyMethodDef methods[] = {
    {"escape", text_escape, METH_O,
     "escape(data) -> bytes\n\nBytes as protobuf's text format prints a bytes field (between the quotes)."},
    {"unescape", text_unescape, METH_VARARGS,
     "unescape(text, final) -> (bytes, used)\n\n"
     "Decode the content of a canonical literal; `used` is how much of `text` was read (an escape\n"
     "cut off by the end is left for the next call, unless `final`). ValueError if not canonical."},
    {"scan", text_scan, METH_VARARGS,
     "scan(window, base, minimum, state) -> (found, state)\n\n"
     "The canonical double-quoted literals of at least `minimum` bytes that end in `window` (which\n"
     "starts at offset `base` of the text), as (start, end, decoded size) of their content; `state`\n"
     "carries the scan from one window to the next (START_STATE first)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "surgery._textformat", "The bytes literals of protobuf's text format, in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__textformat(void)
{
    init_escapes();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    PyObject *start = Py_BuildValue("(iiiiii)", OUTSIDE, 0, 0, 0, 0, 0);
    if (start == NULL || PyModule_AddObject(module, "START_STATE", start) < 0) {
        Py_XDECREF(start);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
