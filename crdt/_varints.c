/* Yjs v1 binaries read natively: state vectors, and updates (their items, skipped runs and delete set).
 *
 * Every merge of a device's Yjs update reads both the update and the document's
 * state vector; read a byte at a time in Python they were a fifth of a hot merge's
 * CPU. The bytes come from devices, so the reader is strict and bounded: a varint
 * over 64 bits (a signed one over 63), a clock past 2^64, a value nested over
 * MAX_DEPTH deep, a string that is not UTF-8, an unknown kind or anything cut short
 * is an IndexError; bytes left over after the delete set a ValueError (what a v2
 * update looks like); never a guess. Counts read from the bytes never size an
 * allocation: each element read takes at least one byte.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const char LEFT_OVER[] = "bytes left over";
enum { MAX_DEPTH = 100 };

typedef struct {
    const unsigned char *at, *end;
    const char *error; /* the first error met, then every read fails */
} Reader;

static uint64_t
read_uint(Reader *reader)
{
    uint64_t value = 0;
    for (unsigned shift = 0; reader->error == NULL; shift += 7) {
        if (reader->at >= reader->end) {
            reader->error = "cut short";
            break;
        }
        uint64_t low = *reader->at & 0x7F;
        if (shift > 63 || (shift > 0 && (low >> (64 - shift)) != 0)) {
            reader->error = "varint too long";
            break;
        }
        value |= low << shift;
        if (*reader->at++ < 0x80) {
            return value;
        }
    }
    return 0;
}

/* A reader over the bytes of data. */
static int
open_reader(PyObject *data, Py_buffer *view, Reader *reader)
{
    if (PyObject_GetBuffer(data, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    reader->at = (const unsigned char *)view->buf;
    reader->end = reader->at + view->len;
    reader->error = NULL;
    return 0;
}

/* The result, or NULL: with the reader's error raised when it met one (and Python's error, if any, first). */
static PyObject *
finish(Py_buffer *view, Reader *reader, PyObject *result)
{
    PyBuffer_Release(view);
    if (reader->error != NULL && !PyErr_Occurred()) {
        Py_XDECREF(result);
        PyErr_SetString(reader->error == LEFT_OVER ? PyExc_ValueError : PyExc_IndexError, reader->error);
        return NULL;
    }
    return result;
}

/* One client's clock in a state vector (a count, then that many client and clock varints, and nothing else); 0
 * when it names none. Read without building the whole of it: a merge looks up two or three clients. */
static PyObject *
state_vector_clock(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t wanted = nargs == 2 ? PyLong_AsUnsignedLongLong(args[1]) : 0;
    if (nargs != 2 || PyErr_Occurred()) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "state_vector_clock(data, client)");
        }
        return NULL;
    }
    Py_buffer view;
    Reader reader;
    if (open_reader(args[0], &view, &reader) < 0) {
        return NULL;
    }
    uint64_t found = 0;
    for (uint64_t count = read_uint(&reader); reader.error == NULL && count > 0; count--) {
        uint64_t client = read_uint(&reader), clock = read_uint(&reader);
        found = client == wanted ? clock : found;
    }
    if (reader.error == NULL && reader.at < reader.end) {
        reader.error = LEFT_OVER;
    }
    return finish(&view, &reader, reader.error == NULL ? PyLong_FromUnsignedLongLong(found) : NULL);
}

/* Raise the clock in ends[client] to at least end. */
static int
raise_end(PyObject *ends, uint64_t client, uint64_t end)
{
    PyObject *key = PyLong_FromUnsignedLongLong(client);
    if (key == NULL) {
        return -1;
    }
    PyObject *known = PyDict_GetItemWithError(ends, key); /* borrowed */
    int status = 0;
    if (known == NULL && PyErr_Occurred()) {
        status = -1;
    } else if (known == NULL || PyLong_AsUnsignedLongLong(known) < end) {
        PyObject *value = PyLong_FromUnsignedLongLong(end);
        status = value == NULL ? -1 : PyDict_SetItem(ends, key, value);
        Py_XDECREF(value);
    }
    Py_DECREF(key);
    return status;
}

/* The delete set, as {client: the clock its deletions end at}; NULL on a Python error. */
static PyObject *
read_delete_set(Reader *reader)
{
    PyObject *ends = PyDict_New();
    uint64_t clients = ends == NULL ? 0 : read_uint(reader);
    for (uint64_t c = 0; ends != NULL && reader->error == NULL && c < clients; c++) {
        uint64_t client = read_uint(reader), runs = read_uint(reader), end = 0;
        for (uint64_t r = 0; reader->error == NULL && r < runs; r++) {
            uint64_t clock = read_uint(reader), length = read_uint(reader);
            if (clock + length < clock) {
                reader->error = "clock out of range";
            } else if (clock + length > end) {
                end = clock + length;
            }
        }
        if (reader->error == NULL && runs > 0 && raise_end(ends, client, end) < 0) {
            Py_CLEAR(ends);
        }
    }
    if (ends != NULL && reader->error == NULL && reader->at != reader->end) {
        reader->error = LEFT_OVER;
    }
    return ends;
}

/* The next `size` bytes, or NULL (and the reader's error) when fewer are left. */
static const unsigned char *
take(Reader *reader, uint64_t size)
{
    if (reader->error != NULL) {
        return NULL;
    }
    if (size > (uint64_t)(reader->end - reader->at)) {
        reader->error = "cut short";
        return NULL;
    }
    const unsigned char *chunk = reader->at;
    reader->at += size;
    return chunk;
}

static int
read_byte(Reader *reader)
{
    const unsigned char *byte = take(reader, 1);
    return byte == NULL ? -1 : *byte;
}

/* lib0's signed varint: six bits and the sign in the first byte, then seven a byte. */
static PyObject *
read_int(Reader *reader)
{
    int byte = read_byte(reader);
    if (byte < 0) {
        return NULL;
    }
    int negative = (byte & 0x40) != 0;
    uint64_t value = (uint64_t)(byte & 0x3F);
    for (unsigned shift = 6; byte & 0x80; shift += 7) {
        if ((byte = read_byte(reader)) < 0) {
            return NULL;
        }
        uint64_t low = (uint64_t)(byte & 0x7F);
        if (shift > 62 || (low >> (63 - shift)) != 0) {
            reader->error = "varint too long";
            return NULL;
        }
        value |= low << shift;
    }
    return PyLong_FromLongLong(negative ? -(long long)value : (long long)value);
}

/* A length-prefixed UTF-8 string. */
static PyObject *
read_string(Reader *reader)
{
    uint64_t size = read_uint(reader);
    const unsigned char *chunk = reader->error == NULL ? take(reader, size) : NULL;
    if (chunk == NULL) {
        return NULL;
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)chunk, (Py_ssize_t)size, "strict");
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        reader->error = "a string that is not UTF-8";
    }
    return text;
}

enum BigEndian { FLOAT32, FLOAT64, INT64 };

static PyObject *
read_big_endian(Reader *reader, enum BigEndian type)
{
    int size = type == FLOAT32 ? 4 : 8;
    const unsigned char *at = take(reader, (uint64_t)size);
    if (at == NULL) {
        return NULL;
    }
    uint64_t bits = 0;
    for (int i = 0; i < size; i++) {
        bits = bits << 8 | at[i];
    }
    if (type == FLOAT32) {
        uint32_t narrow = (uint32_t)bits;
        float value;
        memcpy(&value, &narrow, sizeof value);
        return PyFloat_FromDouble(value);
    }
    if (type == FLOAT64) {
        double value;
        memcpy(&value, &bits, sizeof value);
        return PyFloat_FromDouble(value);
    }
    return PyLong_FromLongLong((long long)bits);
}

static PyObject *read_any(Reader *reader, int depth);

/* `count` values (or key-value pairs) read into a new list (or dict). */
static PyObject *
read_collection(Reader *reader, int depth, int is_object)
{
    uint64_t count = read_uint(reader);
    PyObject *collection = reader->error != NULL ? NULL : (is_object ? PyDict_New() : PyList_New(0));
    for (uint64_t i = 0; collection != NULL && i < count; i++) {
        PyObject *key = is_object ? read_string(reader) : NULL;
        PyObject *value = (key != NULL || !is_object) ? read_any(reader, depth + 1) : NULL;
        int status = value == NULL ? -1
                                   : (is_object ? PyDict_SetItem(collection, key, value) : PyList_Append(collection, value));
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (status < 0) {
            Py_CLEAR(collection);
        }
    }
    return collection;
}

/* lib0's `any`: one JSON-like value, or bytes. */
static PyObject *
read_any(Reader *reader, int depth)
{
    if (depth > MAX_DEPTH) {
        reader->error = "values nested too deep";
        return NULL;
    }
    int type = read_byte(reader);
    switch (type) {
    case -1:
        return NULL;
    case 127: /* undefined */
    case 126: /* null */
        Py_RETURN_NONE;
    case 125:
        return read_int(reader);
    case 124:
        return read_big_endian(reader, FLOAT32);
    case 123:
        return read_big_endian(reader, FLOAT64);
    case 122:
        return read_big_endian(reader, INT64);
    case 121:
        Py_RETURN_FALSE;
    case 120:
        Py_RETURN_TRUE;
    case 119:
        return read_string(reader);
    case 118:
        return read_collection(reader, depth, 1);
    case 117:
        return read_collection(reader, depth, 0);
    case 116: {
        uint64_t size = read_uint(reader);
        const unsigned char *chunk = reader->error == NULL ? take(reader, size) : NULL;
        return chunk == NULL ? NULL : PyBytes_FromStringAndSize((const char *)chunk, (Py_ssize_t)size);
    }
    default:
        reader->error = "an unknown value type";
        return NULL;
    }
}

/* Read and drop a string (checked as any other); 0, or -1 with an error. */
static int
skip_string(Reader *reader)
{
    PyObject *text = read_string(reader);
    Py_XDECREF(text);
    return text == NULL ? -1 : 0;
}

/* A string's length in UTF-16 code units, as Yjs counts clocks; 0 with the reader's error. */
static uint64_t
read_string_length(Reader *reader)
{
    PyObject *text = read_string(reader);
    if (text == NULL) {
        return 0;
    }
    uint64_t units = (uint64_t)PyUnicode_GET_LENGTH(text);
    if (PyUnicode_KIND(text) == PyUnicode_4BYTE_KIND) {
        for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(text); i++) {
            units += PyUnicode_READ_CHAR(text, i) > 0xFFFF;
        }
    }
    Py_DECREF(text);
    return units;
}

enum { DELETED = 1, JSON = 2, BINARY = 3, STRING = 4, EMBED = 5, FORMAT = 6, TYPE = 7, ANY = 8, DOC = 9 };

/* An item's content: its length in clocks, and its values (a tuple; JSON content as its strings). */
static PyObject *
read_content(Reader *reader, int kind, uint64_t *length)
{
    *length = 1;
    switch (kind) {
    case DELETED:
        *length = read_uint(reader);
        break;
    case JSON:
    case ANY: {
        uint64_t count = read_uint(reader);
        PyObject *values = reader->error == NULL ? PyList_New(0) : NULL;
        for (uint64_t i = 0; values != NULL && i < count; i++) {
            PyObject *value = kind == JSON ? read_string(reader) : read_any(reader, 0);
            if (value == NULL || PyList_Append(values, value) < 0) {
                Py_CLEAR(values);
            }
            Py_XDECREF(value);
        }
        *length = count;
        if (values == NULL) {
            return NULL;
        }
        PyObject *tuple = PyList_AsTuple(values);
        Py_DECREF(values);
        return tuple;
    }
    case BINARY: {
        uint64_t size = read_uint(reader);
        take(reader, size);
        break;
    }
    case STRING:
        *length = read_string_length(reader);
        break;
    case EMBED:
        skip_string(reader);
        break;
    case FORMAT:
        if (skip_string(reader) == 0) {
            skip_string(reader);
        }
        break;
    case TYPE: {
        uint64_t type_ref = read_uint(reader);
        if (reader->error == NULL && (type_ref == 3 || type_ref == 5)) { /* XmlElement and XmlHook carry a name */
            skip_string(reader);
        }
        break;
    }
    case DOC: {
        PyObject *options = skip_string(reader) == 0 ? read_any(reader, 0) : NULL;
        Py_XDECREF(options);
        break;
    }
    default:
        reader->error = "an unknown content kind";
    }
    if (reader->error != NULL || PyErr_Occurred()) {
        return NULL;
    }
    return PyTuple_New(0);
}

static PyObject *
read_id(Reader *reader)
{
    uint64_t client = read_uint(reader), clock = read_uint(reader);
    return reader->error == NULL ? Py_BuildValue("(KK)", client, clock) : NULL;
}

enum { ORIGIN = 0x80, RIGHT_ORIGIN = 0x40, PARENT_SUB = 0x20, ITEM_FIELDS = 10 };

/* One item, as an instance of item_type (a tuple type of ITEM_FIELDS fields). */
static PyObject *
read_item(Reader *reader, PyTypeObject *item_type, int info, uint64_t client, uint64_t clock, uint64_t *length)
{
    PyObject *fields[ITEM_FIELDS] = {NULL};
    int kind = info & 0x1F;
    PyObject **origin = &fields[4], **right_origin = &fields[5], **parent_root = &fields[6],
             **parent_item = &fields[7], **parent_sub = &fields[8], **values = &fields[9];
    int failed = ((info & ORIGIN) && (*origin = read_id(reader)) == NULL) ||
                 ((info & RIGHT_ORIGIN) && (*right_origin = read_id(reader)) == NULL);
    if (!failed && !(info & (ORIGIN | RIGHT_ORIGIN))) {
        uint64_t names_root = read_uint(reader);
        failed = reader->error != NULL ||
                 (names_root == 1 ? (*parent_root = read_string(reader)) == NULL
                                  : (*parent_item = read_id(reader)) == NULL) ||
                 ((info & PARENT_SUB) && (*parent_sub = read_string(reader)) == NULL);
    }
    failed = failed || (*values = read_content(reader, kind, length)) == NULL;
    PyObject *item = NULL;
    if (!failed && (fields[0] = PyLong_FromUnsignedLongLong(client)) != NULL &&
        (fields[1] = PyLong_FromUnsignedLongLong(clock)) != NULL &&
        (fields[2] = PyLong_FromUnsignedLongLong(*length)) != NULL && (fields[3] = PyLong_FromLong(kind)) != NULL) {
        item = item_type->tp_alloc(item_type, ITEM_FIELDS);
    }
    for (int i = 0; i < ITEM_FIELDS; i++) {
        PyObject *field = fields[i] != NULL ? fields[i] : Py_NewRef(Py_None);
        if (item != NULL) {
            PyTuple_SET_ITEM(item, i, field); /* steals the reference */
        } else {
            Py_DECREF(field);
        }
    }
    return item;
}

static int
append_new(PyObject *list, PyObject *value)
{
    int status = value == NULL ? -1 : PyList_Append(list, value);
    Py_XDECREF(value);
    return status;
}

/* The update's structs: items into `items`, GC and skip runs as (client, clock, length) into `skipped`. */
static int
read_structs(Reader *reader, PyTypeObject *item_type, PyObject *items, PyObject *skipped)
{
    uint64_t clients = read_uint(reader);
    for (uint64_t c = 0; reader->error == NULL && c < clients; c++) {
        uint64_t count = read_uint(reader), client = read_uint(reader), clock = read_uint(reader);
        for (uint64_t s = 0; reader->error == NULL && s < count; s++) {
            int info = read_byte(reader);
            uint64_t length = 0;
            if (info < 0) {
                break;
            }
            if (info == 0 || info == 10) { /* GC, skip */
                length = read_uint(reader);
                if (reader->error == NULL && append_new(skipped, Py_BuildValue("(KKK)", client, clock, length)) < 0) {
                    return -1;
                }
            } else if (append_new(items, read_item(reader, item_type, info, client, clock, &length)) < 0) {
                if (PyErr_Occurred()) {
                    return -1;
                }
                break;
            }
            if (reader->error == NULL && clock + length < clock) {
                reader->error = "clock out of range";
            }
            clock += length;
        }
    }
    return 0;
}

static PyObject *
read_update(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[1]) || !PyType_IsSubtype((PyTypeObject *)args[1], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "read_update(data, item_type): item_type a tuple type of ten fields");
        return NULL;
    }
    Py_buffer view;
    Reader reader;
    if (open_reader(args[0], &view, &reader) < 0) {
        return NULL;
    }
    PyObject *items = PyList_New(0), *skipped = PyList_New(0), *ends = NULL, *result = NULL;
    if (items != NULL && skipped != NULL && read_structs(&reader, (PyTypeObject *)args[1], items, skipped) == 0 &&
        reader.error == NULL && (ends = read_delete_set(&reader)) != NULL) {
        result = PyTuple_Pack(3, items, skipped, ends);
    }
    Py_XDECREF(items);
    Py_XDECREF(skipped);
    Py_XDECREF(ends);
    return finish(&view, &reader, result);
}

static PyMethodDef methods[] = {
    {"state_vector_clock", (PyCFunction)(void (*)(void))state_vector_clock, METH_FASTCALL,
     "state_vector_clock(data, client): the client's clock in the Yjs state vector in data, which must hold it and "
     "nothing else (0 when it names none)."},
    {"read_update", (PyCFunction)(void (*)(void))read_update, METH_FASTCALL,
     "read_update(data, item_type): the Yjs v1 update in data, which must hold it and nothing else, as (items, "
     "skipped runs as (client, clock, length), {client: the clock its deletions end at}); each item an item_type, "
     "built from (client, clock, length, kind, origin, right_origin, parent_root, parent_item, parent_sub, values)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "crdt._varints",
    .m_doc = "Yjs v1 binaries read natively: state vectors, and updates.",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__varints(void)
{
    return PyModuleDef_Init(&module);
}
