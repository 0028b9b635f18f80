/* The varint-only parts of Yjs v1 binaries, read natively: state vectors and delete sets.
 *
 * Every merge of a device's Yjs update reads both: the update's delete set (a
 * phone sends its whole one) and the document's state vector. Read a byte at a
 * time in Python that was a third of a hot merge's CPU. Strict like the rest of
 * the decoder: a varint longer than 64 bits or cut short is an IndexError, bytes
 * left over after a delete set a ValueError (what a v2 update looks like); never a guess.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static const char LEFT_OVER[] = "bytes left over";

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

/* A reader over data[start:], from the (data, start=0) arguments. */
static int
open_reader(PyObject *const *args, Py_ssize_t nargs, const char *usage, Py_buffer *view, Reader *reader)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    if (PyObject_GetBuffer(args[0], view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    Py_ssize_t start = 0;
    if (nargs == 2 && (start = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred()) {
        PyBuffer_Release(view);
        return -1;
    }
    start = start < 0 ? 0 : (start > view->len ? view->len : start);
    reader->at = (const unsigned char *)view->buf + start;
    reader->end = (const unsigned char *)view->buf + view->len;
    reader->error = NULL;
    return 0;
}

/* The result, or NULL with the reader's error raised. */
static PyObject *
finish(Py_buffer *view, Reader *reader, PyObject *result)
{
    PyBuffer_Release(view);
    if (result != NULL && reader->error != NULL) {
        Py_DECREF(result);
        PyErr_SetString(reader->error == LEFT_OVER ? PyExc_ValueError : PyExc_IndexError, reader->error);
        return NULL;
    }
    return result;
}

static PyObject *
uints(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Reader reader;
    if (open_reader(args, nargs, "uints(data, start=0)", &view, &reader) < 0) {
        return NULL;
    }
    PyObject *values = PyList_New(0);
    while (values != NULL && reader.error == NULL && reader.at < reader.end) {
        uint64_t value = read_uint(&reader);
        PyObject *number = reader.error == NULL ? PyLong_FromUnsignedLongLong(value) : NULL;
        if (number != NULL && PyList_Append(values, number) < 0) {
            Py_CLEAR(values);
        }
        Py_XDECREF(number);
    }
    return finish(&view, &reader, values);
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

static PyObject *
delete_set_ends(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Reader reader;
    if (open_reader(args, nargs, "delete_set_ends(data, start=0)", &view, &reader) < 0) {
        return NULL;
    }
    PyObject *ends = PyDict_New();
    uint64_t clients = ends == NULL ? 0 : read_uint(&reader);
    for (uint64_t c = 0; ends != NULL && reader.error == NULL && c < clients; c++) {
        uint64_t client = read_uint(&reader), runs = read_uint(&reader), end = 0;
        for (uint64_t r = 0; reader.error == NULL && r < runs; r++) {
            uint64_t clock = read_uint(&reader), length = read_uint(&reader);
            if (clock + length < clock) {
                reader.error = "clock out of range";
            } else if (clock + length > end) {
                end = clock + length;
            }
        }
        if (reader.error == NULL && runs > 0 && raise_end(ends, client, end) < 0) {
            Py_CLEAR(ends);
        }
    }
    if (ends != NULL && reader.error == NULL && reader.at != reader.end) {
        reader.error = LEFT_OVER;
    }
    return finish(&view, &reader, ends);
}

static PyMethodDef methods[] = {
    {"uints", (PyCFunction)(void (*)(void))uints, METH_FASTCALL,
     "uints(data, start=0): every lib0 unsigned varint in data[start:], which must hold varints and nothing else."},
    {"delete_set_ends", (PyCFunction)(void (*)(void))delete_set_ends, METH_FASTCALL,
     "delete_set_ends(data, start=0): the Yjs v1 delete set in data[start:], which must hold it and nothing else, "
     "as {client: the clock its deletions end at}."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "crdt._varints",
    .m_doc = "The varint-only parts of Yjs v1 binaries (state vectors, delete sets), read natively.",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__varints(void)
{
    return PyModuleDef_Init(&module);
}
