/*
 * surgery._farmhash: streaming FarmHash Fingerprint64 with constant memory.
 *
 * Fingerprint64 (tensorflow::Fingerprint64, farmhash::Fingerprint64) is
 * farmhashna::Hash64: inputs of up to 64 bytes are hashed whole; longer ones
 * run a 64-byte block loop over the first ((len - 1) / 64) blocks and finish
 * on the last 64 bytes of the input, which may overlap the final loop block.
 * The hash depends on the total length only at the start (how many blocks the
 * loop runs), so a streaming hasher is told the length upfront, runs the loop
 * as blocks arrive (a partial block is carried between update() calls), keeps
 * a copy of the final loop block and the 1..64 bytes after it, and runs the
 * finish on those in digest().
 *
 * Written from the published description of the algorithm; the values are
 * checked against pyfarmhash's farmhash.fingerprint64 by the tests.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "pythread.h"

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FP_BIG_ENDIAN 1
#else
#define FP_BIG_ENDIAN 0
#endif

/* Chunks at least this large are hashed with the GIL released. */
#define FP_NOGIL_THRESHOLD (64 * 1024)

static const uint64_t K0 = 0xc3a5c85c97cb3127ULL;
static const uint64_t K1 = 0xb492b66fbe98f273ULL;
static const uint64_t K2 = 0x9ae16a3b2f90404fULL;
static const uint64_t SEED = 81;

/* ---------------------------------------------------------------- primitives */

static inline uint64_t
le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if FP_BIG_ENDIAN
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint32_t
le32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
#if FP_BIG_ENDIAN
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline uint64_t
rotr64(uint64_t v, unsigned shift)
{
    /* shift is always a nonzero constant below 64 here */
    return (v >> shift) | (v << (64 - shift));
}

static inline uint64_t
shift_mix(uint64_t v)
{
    return v ^ (v >> 47);
}

static inline uint64_t
mix16(uint64_t u, uint64_t v, uint64_t mul)
{
    uint64_t a = (u ^ v) * mul;
    a ^= a >> 47;
    uint64_t b = (v ^ a) * mul;
    b ^= b >> 47;
    return b * mul;
}

/* Two 64-bit words from 32 input bytes and two seeds, written to *lo, *hi. */
static inline void
weak32(const unsigned char *s, uint64_t a, uint64_t b, uint64_t *lo, uint64_t *hi)
{
    uint64_t w = le64(s), x = le64(s + 8), y = le64(s + 16), z = le64(s + 24);
    a += w;
    b = rotr64(b + a + z, 21);
    uint64_t c = a;
    a += x;
    a += y;
    b += rotr64(a, 44);
    *lo = a + z;
    *hi = b + c;
}

/* ------------------------------------------------------- whole short inputs */

static uint64_t
hash_0_to_16(const unsigned char *s, size_t len)
{
    if (len >= 8) {
        uint64_t mul = K2 + (uint64_t)len * 2;
        uint64_t a = le64(s) + K2;
        uint64_t b = le64(s + len - 8);
        uint64_t c = rotr64(b, 37) * mul + a;
        uint64_t d = (rotr64(a, 25) + b) * mul;
        return mix16(c, d, mul);
    }
    if (len >= 4) {
        uint64_t mul = K2 + (uint64_t)len * 2;
        uint64_t a = le32(s);
        return mix16((uint64_t)len + (a << 3), le32(s + len - 4), mul);
    }
    if (len > 0) {
        uint32_t a = s[0], b = s[len >> 1], c = s[len - 1];
        uint32_t y = a + (b << 8);
        uint32_t z = (uint32_t)len + (c << 2);
        return shift_mix((uint64_t)y * K2 ^ (uint64_t)z * K0) * K2;
    }
    return K2;
}

static uint64_t
hash_17_to_32(const unsigned char *s, size_t len)
{
    uint64_t mul = K2 + (uint64_t)len * 2;
    uint64_t a = le64(s) * K1;
    uint64_t b = le64(s + 8);
    uint64_t c = le64(s + len - 8) * mul;
    uint64_t d = le64(s + len - 16) * K2;
    return mix16(rotr64(a + b, 43) + rotr64(c, 30) + d, a + rotr64(b + K2, 18) + c, mul);
}

static uint64_t
hash_33_to_64(const unsigned char *s, size_t len)
{
    uint64_t mul = K2 + (uint64_t)len * 2;
    uint64_t a = le64(s) * K2;
    uint64_t b = le64(s + 8);
    uint64_t c = le64(s + len - 8) * mul;
    uint64_t d = le64(s + len - 16) * K2;
    uint64_t y = rotr64(a + b, 43) + rotr64(c, 30) + d;
    uint64_t z = mix16(y, a + rotr64(b + K2, 18) + c, mul);
    uint64_t e = le64(s + 16) * mul;
    uint64_t f = le64(s + 24);
    uint64_t g = (y + le64(s + len - 32)) * mul;
    uint64_t h = (z + le64(s + len - 24)) * mul;
    return mix16(rotr64(e + f, 43) + rotr64(g, 30) + h, e + rotr64(f + a, 18) + g, mul);
}

/* ------------------------------------------------------------ the stream */

typedef struct {
    uint64_t length;      /* total number of bytes the caller will feed */
    uint64_t fed;         /* bytes fed so far */
    uint64_t nblocks;     /* blocks the loop runs: (length - 1) / 64 if length > 64, else 0 */
    uint64_t blocks_done; /* blocks the loop has run */
    uint64_t x, y, z, v0, v1, w0, w1;
    size_t carry_len;     /* bytes of a not yet complete loop block in carry */
    size_t tail_len;      /* bytes in window after the final loop block (or all bytes if length <= 64) */
    unsigned char carry[64];
    /*
     * length > 64: window[0, 64) is the final loop block once run and
     * window[64, 64 + tail_len) the bytes after it, so the last 64 bytes of
     * the input are window[tail_len, tail_len + 64).
     * length <= 64: the whole input, at window[0, tail_len).
     */
    unsigned char window[128];
} fp_state;

static void
fp_init(fp_state *st, uint64_t length)
{
    memset(st, 0, sizeof *st);
    st->length = length;
    st->nblocks = length > 64 ? (length - 1) / 64 : 0;
    st->x = SEED;
    st->y = SEED * K1 + 113;
    st->z = shift_mix(st->y * K2 + 113) * K2;
}

/* Run the loop over `count` whole blocks at s (count >= 1, not past nblocks). */
static void
fp_blocks(fp_state *st, const unsigned char *s, uint64_t count)
{
    uint64_t x = st->x, y = st->y, z = st->z;
    uint64_t v0 = st->v0, v1 = st->v1, w0 = st->w0, w1 = st->w1;
    const unsigned char *p = s;
    if (st->blocks_done == 0) {
        x = x * K2 + le64(p);
    }
    for (uint64_t i = 0; i < count; i++, p += 64) {
        x = rotr64(x + y + v0 + le64(p + 8), 37) * K1;
        y = rotr64(y + v1 + le64(p + 48), 42) * K1;
        x ^= w1;
        y += v0 + le64(p + 40);
        z = rotr64(z + w0, 33) * K1;
        uint64_t nv0, nv1, nw0, nw1;
        weak32(p, v1 * K1, x + w0, &nv0, &nv1);
        weak32(p + 32, z + w1, y + le64(p + 16), &nw0, &nw1);
        v0 = nv0;
        v1 = nv1;
        w0 = nw0;
        w1 = nw1;
        uint64_t t = z;
        z = x;
        x = t;
    }
    st->x = x;
    st->y = y;
    st->z = z;
    st->v0 = v0;
    st->v1 = v1;
    st->w0 = w0;
    st->w1 = w1;
    st->blocks_done += count;
    if (st->blocks_done == st->nblocks) {
        memcpy(st->window, p - 64, 64);
    }
}

/* Feed n bytes; the caller has checked that fed + n <= length. */
static void
fp_update(fp_state *st, const unsigned char *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (st->length <= 64) {
        memcpy(st->window + st->tail_len, p, n);
        st->tail_len += n;
        st->fed += n;
        return;
    }
    if (st->blocks_done < st->nblocks) {
        if (st->carry_len > 0) {
            size_t take = 64 - st->carry_len;
            if (take > n) {
                take = n;
            }
            memcpy(st->carry + st->carry_len, p, take);
            st->carry_len += take;
            p += take;
            n -= take;
            st->fed += take;
            if (st->carry_len < 64) {
                return; /* n is 0 */
            }
            fp_blocks(st, st->carry, 1);
            st->carry_len = 0;
        }
        uint64_t whole = n / 64;
        uint64_t left = st->nblocks - st->blocks_done;
        if (whole > left) {
            whole = left;
        }
        if (whole > 0) {
            fp_blocks(st, p, whole);
            p += whole * 64;
            n -= (size_t)whole * 64;
            st->fed += whole * 64;
        }
        if (st->blocks_done < st->nblocks) {
            /* n < 64 here: the start of the next loop block */
            memcpy(st->carry, p, n);
            st->carry_len = n;
            st->fed += n;
            return;
        }
    }
    /* After the loop: at most 64 bytes, since fed + n <= length. */
    memcpy(st->window + 64 + st->tail_len, p, n);
    st->tail_len += n;
    st->fed += n;
}

/* The hash of all `length` bytes; the caller has checked that fed == length. Leaves st unchanged. */
static uint64_t
fp_digest(const fp_state *st)
{
    size_t len = (size_t)st->length;
    if (st->length <= 16) {
        return hash_0_to_16(st->window, len);
    }
    if (st->length <= 32) {
        return hash_17_to_32(st->window, len);
    }
    if (st->length <= 64) {
        return hash_33_to_64(st->window, len);
    }
    uint64_t x = st->x, y = st->y, z = st->z;
    uint64_t v0 = st->v0, v1 = st->v1, w0 = st->w0, w1 = st->w1;
    const unsigned char *s = st->window + st->tail_len; /* the last 64 bytes */
    uint64_t mul = K1 + ((z & 0xff) << 1);
    w0 += (uint64_t)(st->tail_len - 1); /* (length - 1) & 63 */
    v0 += w0;
    w0 += v0;
    x = rotr64(x + y + v0 + le64(s + 8), 37) * mul;
    y = rotr64(y + v1 + le64(s + 48), 42) * mul;
    x ^= w1 * 9;
    y += v0 * 9 + le64(s + 40);
    z = rotr64(z + w0, 33) * mul;
    uint64_t nv0, nv1, nw0, nw1;
    weak32(s, v1 * mul, x + w0, &nv0, &nv1);
    weak32(s + 32, z + w1, y + le64(s + 16), &nw0, &nw1);
    uint64_t t = z;
    z = x;
    x = t;
    return mix16(mix16(nv0, nw0, mul) + shift_mix(y) * K0 + z, mix16(nv1, nw1, mul) + x, mul);
}

/* ------------------------------------------------------------ Python type */

typedef struct {
    PyObject_HEAD
    fp_state st;
    PyThread_type_lock lock; /* held while an update() or digest() runs */
} Fp64Object;

static PyObject *
Fp64_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Fp64Object *self = (Fp64Object *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_MemoryError, "Fingerprint64: cannot allocate a lock");
        return NULL;
    }
    fp_init(&self->st, 0);
    return (PyObject *)self;
}

static void
Fp64_dealloc(Fp64Object *self)
{
    if (self->lock != NULL) {
        PyThread_free_lock(self->lock);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
fp_acquire(Fp64Object *self, const char *what)
{
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        PyErr_Format(PyExc_RuntimeError,
                     "Fingerprint64.%s: another thread is feeding this hasher right now; "
                     "one hasher takes its bytes from one thread at a time",
                     what);
        return -1;
    }
    return 0;
}

static int
parse_length(PyObject *obj, uint64_t *out)
{
    PyObject *index = PyNumber_Index(obj);
    if (index == NULL) {
        return -1;
    }
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow > 0) {
        PyErr_SetString(PyExc_OverflowError, "Fingerprint64: length is too large");
        return -1;
    }
    if (overflow < 0 || value < 0) {
        PyErr_Format(PyExc_ValueError, "Fingerprint64: length must be >= 0, got %S", obj);
        return -1;
    }
    *out = (uint64_t)value;
    return 0;
}

static int
Fp64_init(Fp64Object *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"length", NULL};
    PyObject *length_obj;
    uint64_t length;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Fingerprint64", kwlist, &length_obj)) {
        return -1;
    }
    if (parse_length(length_obj, &length) < 0) {
        return -1;
    }
    if (fp_acquire(self, "__init__()") < 0) {
        return -1;
    }
    fp_init(&self->st, length);
    PyThread_release_lock(self->lock);
    return 0;
}

/* Feed a buffer into st, releasing the GIL for large ones. */
static void
fp_feed(fp_state *st, const Py_buffer *view)
{
    if (view->len >= FP_NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        fp_update(st, (const unsigned char *)view->buf, (size_t)view->len);
        Py_END_ALLOW_THREADS
    }
    else {
        fp_update(st, (const unsigned char *)view->buf, (size_t)view->len);
    }
}

static PyObject *
Fp64_update(Fp64Object *self, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (fp_acquire(self, "update()") < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    uint64_t n = (uint64_t)view.len;
    if (n > self->st.length - self->st.fed) {
        PyErr_Format(PyExc_ValueError,
                     "Fingerprint64.update(): %llu more bytes would make %llu in all, more than the "
                     "length %llu given to Fingerprint64()",
                     (unsigned long long)n, (unsigned long long)(self->st.fed + n),
                     (unsigned long long)self->st.length);
        PyThread_release_lock(self->lock);
        PyBuffer_Release(&view);
        return NULL;
    }
    fp_feed(&self->st, &view);
    PyThread_release_lock(self->lock);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *
Fp64_digest(Fp64Object *self, PyObject *Py_UNUSED(ignored))
{
    if (fp_acquire(self, "digest()") < 0) {
        return NULL;
    }
    if (self->st.fed != self->st.length) {
        PyErr_Format(PyExc_ValueError,
                     "Fingerprint64.digest(): only %llu of the %llu bytes given to Fingerprint64() "
                     "were fed",
                     (unsigned long long)self->st.fed, (unsigned long long)self->st.length);
        PyThread_release_lock(self->lock);
        return NULL;
    }
    uint64_t h = fp_digest(&self->st);
    PyThread_release_lock(self->lock);
    return PyLong_FromUnsignedLongLong(h);
}

static PyObject *
fingerprint64(PyObject *module, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    fp_state st;
    fp_init(&st, (uint64_t)view.len);
    fp_feed(&st, &view);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(fp_digest(&st));
}

PyDoc_STRVAR(Fp64_doc,
             "Fingerprint64(length)\n--\n\n"
             "Streaming FarmHash Fingerprint64 (farmhashna::Hash64, as tensorflow::Fingerprint64)\n"
             "of exactly `length` bytes, fed through update() in chunks of any size, in constant\n"
             "memory. digest() gives the same value as farmhash.fingerprint64 over all the bytes.");

PyDoc_STRVAR(Fp64_update_doc,
             "update($self, data, /)\n--\n\n"
             "Feed the next bytes (any contiguous buffer: bytes, bytearray, memoryview, mmap).\n"
             "ValueError if the bytes fed would exceed the length; large chunks are hashed\n"
             "with the GIL released.");

PyDoc_STRVAR(Fp64_digest_doc,
             "digest($self, /)\n--\n\n"
             "The unsigned 64-bit fingerprint; ValueError if fewer than `length` bytes were fed.");

PyDoc_STRVAR(fingerprint64_doc,
             "fingerprint64($module, data, /)\n--\n\n"
             "FarmHash Fingerprint64 of a whole buffer (GIL released for large ones).");

static PyMethodDef Fp64_methods[] = {
    {"update", (PyCFunction)Fp64_update, METH_O, Fp64_update_doc},
    {"digest", (PyCFunction)Fp64_digest, METH_NOARGS, Fp64_digest_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Fp64Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "surgery._farmhash.Fingerprint64",
    .tp_basicsize = sizeof(Fp64Object),
    .tp_dealloc = (destructor)Fp64_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Fp64_doc,
    .tp_methods = Fp64_methods,
    .tp_init = (initproc)Fp64_init,
    .tp_new = Fp64_new,
};

static PyMethodDef module_methods[] = {
    {"fingerprint64", (PyCFunction)fingerprint64, METH_O, fingerprint64_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef farmhash_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "surgery._farmhash",
    .m_doc = "Streaming FarmHash Fingerprint64 in constant memory.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__farmhash(void)
{
    if (PyType_Ready(&Fp64Type) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&farmhash_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&Fp64Type);
    if (PyModule_AddObject(m, "Fingerprint64", (PyObject *)&Fp64Type) < 0) {
        Py_DECREF(&Fp64Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
