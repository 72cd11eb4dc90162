/* issuer._wrap: the steps of issuing that C does at least twice as fast as the best
 * library for them (scripts/bench_compiled, docs/architecture.md): hashing and encoding,
 * the row check, finding a CSV file's record ends, assembling a
 * batch's documents, and writing and renaming its files without the GIL. Optional: each
 * has a Python path (issuer/compiled.py).
 *
 * Issuing hashes 34 SHA-256 messages per 11-field licence (a salt HMAC and a commitment
 * per field, then the leaf). From Python each costs a few hash-object calls, about
 * 1.7 us a field in all; here the whole licence costs a few microseconds. The bytes are
 * defined in licence/digest.py (the reference implementation; tests compare the two on
 * arbitrary text), and docs/format.md.
 *
 * encode(rows, secrets, plan) -> (licence ids, field texts)
 *   rows     sequence of dicts: field name -> str (already checked; other keys ignored)
 *   secrets  bytes, 16 per row
 *   plan     tuple built by issuer.encoder.LicenceIds: per field, in catalogue order,
 *            (name, HMAC message, commitment prefix, leaf member prefix, document member
 *            prefix), then the leaf's member order (catalogue indexes) and its tail
 * The licence id of each row (16 bytes) and its document's "fields" members,
 * `"name":"value",...` in catalogue order.
 *
 * SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, whose context
 * set-up costs more than hashing these short messages; they remain in every 3.x.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_API_COMPAT 0x10100000L
#include <Python.h>
#include <openssl/sha.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIGEST_BYTES 16
#define SECRET_BYTES 16
#define BLOCK 64

typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Buffer;

static int reserve(Buffer *buffer, Py_ssize_t extra)
{
    if (buffer->length + extra <= buffer->capacity)
        return 0;
    Py_ssize_t capacity = buffer->capacity ? buffer->capacity : 1024;
    while (capacity < buffer->length + extra)
        capacity *= 2;
    char *grown = PyMem_Realloc(buffer->data, capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->data = grown;
    buffer->capacity = capacity;
    return 0;
}

static int put(Buffer *buffer, const char *bytes, Py_ssize_t count)
{
    if (reserve(buffer, count) < 0)
        return -1;
    memcpy(buffer->data + buffer->length, bytes, count);
    buffer->length += count;
    return 0;
}

/* A JSON string as json.dumps(ensure_ascii=False) writes it, which for strings is JCS:
 * quote and backslash escaped, \b \f \n \r \t short, other controls as \u00xx, every
 * other character as its UTF-8. Escaping concerns ASCII only, so UTF-8 in, UTF-8 out. */
static int put_json_string(Buffer *buffer, const unsigned char *text, Py_ssize_t count)
{
    static const char hex[] = "0123456789abcdef";
    if (reserve(buffer, 6 * count + 2) < 0)
        return -1;
    char *out = buffer->data + buffer->length;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned char c = text[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    *out++ = '"';
    buffer->length = out - buffer->data;
    return 0;
}

typedef struct {
    PyObject *name;            /* str, the dict key */
    const char *message;       /* the field name's UTF-8: the salt's HMAC message */
    Py_ssize_t message_length;
    const char *pair;          /* JCS ["name",  : what precedes the value in a commitment */
    Py_ssize_t pair_length;
    const char *leaf_member;   /* "name":"0x    : what precedes the commitment in the leaf */
    Py_ssize_t leaf_member_length;
    const char *doc_member;    /* "name":       : what precedes the value in the document */
    Py_ssize_t doc_member_length;
} Field;

static int bytes_of(PyObject *object, const char **data, Py_ssize_t *length)
{
    if (!PyBytes_Check(object)) {
        PyErr_SetString(PyExc_TypeError, "the plan's pieces must be bytes");
        return -1;
    }
    *data = PyBytes_AS_STRING(object);
    *length = PyBytes_GET_SIZE(object);
    return 0;
}

static void digest_of(SHA256_CTX *context, unsigned char out[DIGEST_BYTES])
{
    unsigned char full[SHA256_DIGEST_LENGTH];
    SHA256_Final(full, context);
    memcpy(out, full, DIGEST_BYTES);
}

static void put_hex(char *out, const unsigned char *bytes, int count)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < count; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
}

/* One licence: its id into `licence_id`, its document's field members into `fields`. */
static int encode_one(PyObject *row, const unsigned char *secret, const Field *plan,
                      Py_ssize_t field_count, const Py_ssize_t *order, const char *tail,
                      Py_ssize_t tail_length, Buffer *fields, Buffer *text, Buffer *leaf,
                      char (*commitment_hex)[2 * DIGEST_BYTES], char *present,
                      unsigned char licence_id[DIGEST_BYTES])
{
    static const unsigned char commitment_tag = 0x02, leaf_tag = 0x00;
    unsigned char key[BLOCK], padded[BLOCK];
    SHA256_CTX inner, outer, step;
    unsigned char inner_digest[SHA256_DIGEST_LENGTH], salt[DIGEST_BYTES], value[DIGEST_BYTES];

    /* HMAC-SHA256 keyed with the secret (RFC 2104): the padded key schedule once per
     * licence, copied for each field. */
    memset(key, 0, BLOCK);
    memcpy(key, secret, SECRET_BYTES);
    for (int i = 0; i < BLOCK; i++)
        padded[i] = key[i] ^ 0x36;
    SHA256_Init(&inner);
    SHA256_Update(&inner, padded, BLOCK);
    for (int i = 0; i < BLOCK; i++)
        padded[i] = key[i] ^ 0x5c;
    SHA256_Init(&outer);
    SHA256_Update(&outer, padded, BLOCK);

    fields->length = 0;
    int first = 1;
    for (Py_ssize_t f = 0; f < field_count; f++) {
        present[f] = 0;
        PyObject *item = PyDict_GetItemWithError(row, plan[f].name);
        if (item == NULL) {
            if (PyErr_Occurred())
                return -1;
            continue;
        }
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "field %R must be text, not %.100s", plan[f].name,
                         Py_TYPE(item)->tp_name);
            return -1;
        }
        /* ASCII text is its own UTF-8. Other text is encoded into a temporary rather
         * than with PyUnicode_AsUTF8AndSize, which would keep a copy inside each string:
         * more memory, and in a worker a write to every page of the rows it inherited. */
        text->length = 0;
        if (PyUnicode_IS_ASCII(item)) {
            if (put_json_string(text, PyUnicode_DATA(item), PyUnicode_GET_LENGTH(item)) < 0)
                return -1;
        }
        else {
            PyObject *utf8 = PyUnicode_AsUTF8String(item);
            if (utf8 == NULL)
                return -1; /* a lone surrogate: UnicodeEncodeError, as str.encode gives */
            int failed = put_json_string(text, (const unsigned char *)PyBytes_AS_STRING(utf8),
                                         PyBytes_GET_SIZE(utf8));
            Py_DECREF(utf8);
            if (failed < 0)
                return -1;
        }

        step = inner;
        SHA256_Update(&step, plan[f].message, plan[f].message_length);
        SHA256_Final(inner_digest, &step);
        step = outer;
        SHA256_Update(&step, inner_digest, SHA256_DIGEST_LENGTH);
        digest_of(&step, salt);

        SHA256_Init(&step);
        SHA256_Update(&step, &commitment_tag, 1);
        SHA256_Update(&step, salt, DIGEST_BYTES);
        SHA256_Update(&step, plan[f].pair, plan[f].pair_length);
        SHA256_Update(&step, text->data, text->length);
        SHA256_Update(&step, "]", 1);
        digest_of(&step, value);
        put_hex(commitment_hex[f], value, DIGEST_BYTES);
        present[f] = 1;

        if ((!first && put(fields, ",", 1) < 0) ||
            put(fields, plan[f].doc_member, plan[f].doc_member_length) < 0 ||
            put(fields, text->data, text->length) < 0)
            return -1;
        first = 0;
    }

    leaf->length = 0;
    if (put(leaf, (const char *)&leaf_tag, 1) < 0 || put(leaf, "{\"commitments\":{", 16) < 0)
        return -1;
    first = 1;
    for (Py_ssize_t k = 0; k < field_count; k++) {
        Py_ssize_t f = order[k];
        if (!present[f])
            continue;
        if ((!first && put(leaf, ",", 1) < 0) ||
            put(leaf, plan[f].leaf_member, plan[f].leaf_member_length) < 0 ||
            put(leaf, commitment_hex[f], 2 * DIGEST_BYTES) < 0 || put(leaf, "\"", 1) < 0)
            return -1;
        first = 0;
    }
    if (put(leaf, tail, tail_length) < 0)
        return -1;
    SHA256_Init(&step);
    SHA256_Update(&step, leaf->data, leaf->length);
    digest_of(&step, licence_id);
    return 0;
}

static PyObject *encode(PyObject *module, PyObject *args)
{
    PyObject *rows, *plan_tuple, *fields_plan, *order_tuple, *tail_bytes;
    Py_buffer secrets;
    (void)module;
    if (!PyArg_ParseTuple(args, "Oy*O!", &rows, &secrets, &PyTuple_Type, &plan_tuple))
        return NULL;

    PyObject *result = NULL, *ids = NULL, *texts = NULL, *sequence = NULL;
    Field *plan = NULL;
    Py_ssize_t *order = NULL;
    char (*commitment_hex)[2 * DIGEST_BYTES] = NULL;
    char *present = NULL;
    Buffer fields = {0}, text = {0}, leaf = {0};

    if (!PyArg_ParseTuple(plan_tuple, "O!O!S", &PyTuple_Type, &fields_plan, &PyTuple_Type,
                          &order_tuple, &tail_bytes))
        goto done;
    Py_ssize_t field_count = PyTuple_GET_SIZE(fields_plan);
    if (PyTuple_GET_SIZE(order_tuple) != field_count) {
        PyErr_SetString(PyExc_ValueError, "the leaf order must name every field once");
        goto done;
    }
    plan = PyMem_Calloc(field_count ? field_count : 1, sizeof(Field));
    order = PyMem_Calloc(field_count ? field_count : 1, sizeof(Py_ssize_t));
    commitment_hex = PyMem_Calloc(field_count ? field_count : 1, 2 * DIGEST_BYTES);
    present = PyMem_Calloc(field_count ? field_count : 1, 1);
    if (!plan || !order || !commitment_hex || !present) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t f = 0; f < field_count; f++) {
        PyObject *message, *pair, *leaf_member, *doc_member;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(fields_plan, f), "UOOOO", &plan[f].name,
                              &message, &pair, &leaf_member, &doc_member) ||
            bytes_of(message, &plan[f].message, &plan[f].message_length) < 0 ||
            bytes_of(pair, &plan[f].pair, &plan[f].pair_length) < 0 ||
            bytes_of(leaf_member, &plan[f].leaf_member, &plan[f].leaf_member_length) < 0 ||
            bytes_of(doc_member, &plan[f].doc_member, &plan[f].doc_member_length) < 0)
            goto done;
        order[f] = PyLong_AsSsize_t(PyTuple_GET_ITEM(order_tuple, f));
        if (order[f] == -1 && PyErr_Occurred())
            goto done;
        if (order[f] < 0 || order[f] >= field_count) {
            PyErr_SetString(PyExc_ValueError, "the leaf order names a field that is not there");
            goto done;
        }
    }

    sequence = PySequence_Fast(rows, "rows must be a sequence of dicts");
    if (sequence == NULL)
        goto done;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    if (secrets.len != count * SECRET_BYTES) {
        PyErr_Format(PyExc_ValueError, "%zd rows need %zd bytes of secrets, not %zd", count,
                     count * SECRET_BYTES, secrets.len);
        goto done;
    }
    ids = PyList_New(count);
    texts = PyList_New(count);
    if (ids == NULL || texts == NULL)
        goto done;
    const char *tail = PyBytes_AS_STRING(tail_bytes);
    Py_ssize_t tail_length = PyBytes_GET_SIZE(tail_bytes);
    const unsigned char *secret_bytes = secrets.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PySequence_Fast_GET_ITEM(sequence, i);
        if (!PyDict_Check(row)) {
            PyErr_Format(PyExc_TypeError, "row %zd is a %.100s, not a dict", i,
                         Py_TYPE(row)->tp_name);
            goto done;
        }
        unsigned char licence_id[DIGEST_BYTES];
        if (encode_one(row, secret_bytes + i * SECRET_BYTES, plan, field_count, order, tail,
                       tail_length, &fields, &text, &leaf, commitment_hex, present,
                       licence_id) < 0)
            goto done;
        PyObject *id_object = PyBytes_FromStringAndSize((const char *)licence_id, DIGEST_BYTES);
        if (id_object == NULL)
            goto done;
        PyList_SET_ITEM(ids, i, id_object);
        PyObject *text_object = PyBytes_FromStringAndSize(fields.data, fields.length);
        if (text_object == NULL)
            goto done;
        PyList_SET_ITEM(texts, i, text_object);
    }
    result = PyTuple_Pack(2, ids, texts);

done:
    PyBuffer_Release(&secrets);
    Py_XDECREF(sequence);
    Py_XDECREF(ids);
    Py_XDECREF(texts);
    PyMem_Free(plan);
    PyMem_Free(order);
    PyMem_Free(commitment_hex);
    PyMem_Free(present);
    PyMem_Free(fields.data);
    PyMem_Free(text.data);
    PyMem_Free(leaf.data);
    return result;
}

/* ---- The row check: which rows may skip issuer.validation.field_problems ----
 *
 * check(rows, plan) -> indexes of the rows that are not plainly valid
 *   plan  (fields, date order, is_normalized), built by issuer.validation.RowsCheck:
 *         per catalogue field (name, required, longest or -1, kind, pattern fullmatch or
 *         None); the catalogue indexes of validFrom and validUntil (or -1); and
 *         unicodedata.is_normalized
 * A row passes only when field_problems would find nothing in it; a row that does not
 * pass goes to field_problems, which names its problems (or finds none: the check may
 * refuse what it cannot judge, such as a row that is not a dict, never the reverse).
 */

enum { KIND_TEXT = 0, KIND_DATE = 1, KIND_CREDIT_CODE = 2 };

typedef struct {
    PyObject *name;
    int required;
    Py_ssize_t longest; /* -1: no limit */
    int kind;
    PyObject *pattern; /* a compiled pattern's fullmatch, or None */
} Rule;

/* 0 when the text is not acceptable, 1 when it is, -1 on a Python error. */
static int text_acceptable(PyObject *value, const Rule *rule, PyObject *is_normalized,
                           PyObject *nfc)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(value);
    if (length == 0 || (rule->longest >= 0 && length > rule->longest))
        return 0;
    int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    /* str.strip() removes what Py_UNICODE_ISSPACE calls white space */
    if (Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, 0)) ||
        Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, length - 1)))
        return 0;
    if (PyUnicode_IS_ASCII(value)) {
        const unsigned char *bytes = data;
        for (Py_ssize_t i = 0; i < length; i++)
            if (bytes[i] < 0x20 || bytes[i] == 0x7f)
                return 0;
    }
    else {
        for (Py_ssize_t i = 0; i < length; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff))
                return 0;
        }
        PyObject *args[2] = {nfc, value};
        PyObject *normal = PyObject_Vectorcall(is_normalized, args, 2, NULL);
        if (normal == NULL)
            return -1;
        int is_nfc = normal == Py_True;
        Py_DECREF(normal);
        if (!is_nfc)
            return 0;
    }
    if (rule->pattern != Py_None) {
        PyObject *match = PyObject_CallOneArg(rule->pattern, value);
        if (match == NULL)
            return -1;
        int matched = match != Py_None;
        Py_DECREF(match);
        if (!matched)
            return 0;
    }
    return 1;
}

static int digit_value(Py_UCS4 c) { return c >= '0' && c <= '9' ? (int)(c - '0') : -1; }

/* What issuer.validation.parse_date accepts: YYYY-MM-DD, a day of the proleptic
 * Gregorian calendar from year 1 (datetime.date.fromisoformat's ASCII digits). */
static int is_date(PyObject *value)
{
    if (PyUnicode_GET_LENGTH(value) != 10 || !PyUnicode_IS_ASCII(value))
        return 0;
    const unsigned char *t = PyUnicode_DATA(value);
    static const int shape[10] = {1, 1, 1, 1, 0, 1, 1, 0, 1, 1};
    int n[10] = {0};
    for (int i = 0; i < 10; i++) {
        if (shape[i] ? (n[i] = digit_value(t[i])) < 0 : t[i] != '-')
            return 0;
    }
    int year = n[0] * 1000 + n[1] * 100 + n[2] * 10 + n[3];
    int month = n[5] * 10 + n[6], day = n[8] * 10 + n[9];
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1)
        return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return day <= days[month - 1] + (month == 2 && leap);
}

/* credit_code.problem_with(value) is None: GB 32100's 18 characters and check character. */
static int is_credit_code(PyObject *value)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    if (PyUnicode_GET_LENGTH(value) != 18 || !PyUnicode_IS_ASCII(value))
        return 0;
    const unsigned char *t = PyUnicode_DATA(value);
    int values[18];
    for (int i = 0; i < 18; i++) {
        const char *at = t[i] ? strchr(alphabet, t[i]) : NULL;
        if (at == NULL)
            return 0;
        values[i] = (int)(at - alphabet);
    }
    int total = 0, weight = 1;
    for (int i = 0; i < 17; i++) {
        total += values[i] * weight;
        weight = weight * 3 % 31;
    }
    return (31 - total % 31) % 31 == values[17];
}

/* 1 when field_problems would find nothing in the row, 0 otherwise, -1 on an error. */
static int row_acceptable(PyObject *row, const Rule *rules, Py_ssize_t rule_count,
                          Py_ssize_t valid_from, Py_ssize_t valid_until,
                          PyObject *is_normalized, PyObject *nfc)
{
    if (!PyDict_CheckExact(row))
        return 0;
    Py_ssize_t present = 0;
    PyObject *from = NULL, *until = NULL;
    for (Py_ssize_t f = 0; f < rule_count; f++) {
        PyObject *value = PyDict_GetItemWithError(row, rules[f].name);
        if (value == NULL) {
            if (PyErr_Occurred())
                return -1;
            if (rules[f].required)
                return 0;
            continue;
        }
        present++;
        if (!PyUnicode_CheckExact(value))
            return 0;
        int acceptable = text_acceptable(value, &rules[f], is_normalized, nfc);
        if (acceptable <= 0)
            return acceptable;
        if ((rules[f].kind == KIND_DATE && !is_date(value)) ||
            (rules[f].kind == KIND_CREDIT_CODE && !is_credit_code(value)))
            return 0;
        if (f == valid_from)
            from = value;
        if (f == valid_until)
            until = value;
    }
    if (present != PyDict_GET_SIZE(row))
        return 0; /* a key that is no field of the type */
    /* Two checked dates written YYYY-MM-DD compare as their text does. */
    if (from != NULL && until != NULL &&
        memcmp(PyUnicode_DATA(until), PyUnicode_DATA(from), 10) < 0)
        return 0;
    return 1;
}

static PyObject *check(PyObject *module, PyObject *args)
{
    PyObject *rows, *plan_tuple, *rules_tuple, *is_normalized;
    Py_ssize_t valid_from, valid_until;
    (void)module;
    if (!PyArg_ParseTuple(args, "OO!", &rows, &PyTuple_Type, &plan_tuple) ||
        !PyArg_ParseTuple(plan_tuple, "O!(nn)O", &PyTuple_Type, &rules_tuple, &valid_from,
                          &valid_until, &is_normalized))
        return NULL;
    Py_ssize_t rule_count = PyTuple_GET_SIZE(rules_tuple);
    if (valid_from >= rule_count || valid_until >= rule_count) {
        PyErr_SetString(PyExc_ValueError, "the date order names a field that is not there");
        return NULL;
    }
    PyObject *result = NULL, *failing = NULL, *sequence = NULL;
    PyObject *nfc = PyUnicode_FromString("NFC");
    Rule *rules = PyMem_Calloc(rule_count ? rule_count : 1, sizeof(Rule));
    if (nfc == NULL || rules == NULL) {
        if (rules == NULL)
            PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t f = 0; f < rule_count; f++) {
        Rule *rule = &rules[f];
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(rules_tuple, f), "UpniO", &rule->name,
                              &rule->required, &rule->longest, &rule->kind, &rule->pattern))
            goto done;
        if (rule->kind < KIND_TEXT || rule->kind > KIND_CREDIT_CODE) {
            PyErr_Format(PyExc_ValueError, "field %R has an unknown kind %d", rule->name,
                         rule->kind);
            goto done;
        }
    }
    for (Py_ssize_t f = 0; f < 2; f++) {
        Py_ssize_t date_field = f ? valid_until : valid_from;
        if (date_field >= 0 && rules[date_field].kind != KIND_DATE) {
            PyErr_SetString(PyExc_ValueError, "the date order must name date fields");
            goto done;
        }
    }
    sequence = PySequence_Fast(rows, "rows must be a sequence of dicts");
    failing = PyList_New(0);
    if (sequence == NULL || failing == NULL)
        goto done;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    for (Py_ssize_t i = 0; i < count; i++) {
        int acceptable = row_acceptable(PySequence_Fast_GET_ITEM(sequence, i), rules,
                                        rule_count, valid_from, valid_until, is_normalized, nfc);
        if (acceptable < 0)
            goto done;
        if (!acceptable) {
            PyObject *index = PyLong_FromSsize_t(i);
            int failed = index == NULL || PyList_Append(failing, index) < 0;
            Py_XDECREF(index);
            if (failed)
                goto done;
        }
    }
    result = failing;
    failing = NULL;

done:
    Py_XDECREF(nfc);
    Py_XDECREF(sequence);
    Py_XDECREF(failing);
    PyMem_Free(rules);
    return result;
}

/* ---- Where a CSV file's records end, so that workers can each parse a part ----
 *
 * record_bounds(data, start, every) -> (ends, records), or None
 *   the byte offsets where every `every`-th record from `start` ends (and, last, where
 *   the final record ends), and the number of records; None when the data holds what
 *   csv.reader(strict=True) refuses (text after a closing quote, a quoted field still
 *   open at the end), which the whole-file read then reports.
 * The rules are those of csv.reader's default dialect reading io.StringIO(text,
 * newline=""): a line ends after \n, \r\n or a lone \r; a record ends with a line that
 * is not inside a quoted field; a quote opens a quoted field only as a field's first
 * character, and "" inside one is a quote. UTF-8 never uses these bytes inside a
 * character, so bytes can be scanned as they are. The parts' readers count their records
 * against this count, so a disagreement is found, never trusted.
 */
enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED };

static PyObject *record_bounds(PyObject *module, PyObject *args)
{
    Py_buffer data;
    Py_ssize_t start, every;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*nn", &data, &start, &every))
        return NULL;
    PyObject *result = NULL, *ends = NULL;
    if (every < 1 || start < 0 || start > data.len) {
        PyErr_SetString(PyExc_ValueError, "need 0 <= start <= len(data) and every >= 1");
        goto done;
    }
    ends = PyList_New(0);
    if (ends == NULL)
        goto done;
    const unsigned char *bytes = data.buf;
    Py_ssize_t records = 0, length = data.len;
    int state = FIELD_START, in_record = 0;
    for (Py_ssize_t i = start; i < length; i++) {
        unsigned char c = bytes[i];
        if (c == '\n' || c == '\r') {
            if (state == QUOTED)
                continue;
            if (c == '\r' && i + 1 < length && bytes[i + 1] == '\n')
                i++;
            state = FIELD_START;
            in_record = 0;
            if (++records % every == 0) {
                PyObject *end = PyLong_FromSsize_t(i + 1);
                int failed = end == NULL || PyList_Append(ends, end) < 0;
                Py_XDECREF(end);
                if (failed)
                    goto done;
            }
            continue;
        }
        in_record = 1;
        if (c == '"') {
            state = state == FIELD_START  ? QUOTED
                    : state == QUOTED     ? QUOTE_IN_QUOTED
                    : state == UNQUOTED   ? UNQUOTED
                                          : QUOTED; /* "" inside a quoted field */
        }
        else if (c == ',') {
            if (state != QUOTED)
                state = FIELD_START;
        }
        else if (state == QUOTE_IN_QUOTED) {
            goto refused; /* strict: only , or a line end may follow a closing quote */
        }
        else if (state == FIELD_START) {
            state = UNQUOTED;
        }
    }
    if (state == QUOTED)
        goto refused; /* strict: unexpected end of data */
    if (in_record)
        records++; /* a last line without its line end */
    Py_ssize_t found = PyList_GET_SIZE(ends);
    if (found == 0 || PyLong_AsSsize_t(PyList_GET_ITEM(ends, found - 1)) < length) {
        PyObject *end = PyLong_FromSsize_t(length);
        if (end == NULL || PyList_Append(ends, end) < 0) {
            Py_XDECREF(end);
            goto done;
        }
        Py_DECREF(end);
    }
    result = Py_BuildValue("(On)", ends, records);
    goto done;

refused:
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&data);
    Py_XDECREF(ends);
    return result;
}

/* ---- Creating and renaming a batch's files ----
 *
 * write_files(folder, names, contents, mode) and rename_files(source, target, names)
 *   folder, source and target are directory descriptors; names are relative to them.
 *   write_files creates (or truncates) each file with exactly `mode` and writes its
 *   contents; rename_files moves each name from source to target. OSError names the file that failed.
 * The loops run without the GIL: a batch is ten thousand system calls, and from Python
 * each would take the GIL back, queueing behind the thread that plans and anchors.
 */
/* Each name's UTF-8 (kept by the str objects, which the caller holds); NULL on an error. */
static const char **utf8_names(PyObject *names)
{
    Py_ssize_t count = PyList_GET_SIZE(names);
    const char **paths = PyMem_Calloc(count ? count : 1, sizeof(char *));
    if (paths == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        Py_ssize_t size;
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "file name %zd is not text", i);
            goto failed;
        }
        paths[i] = PyUnicode_AsUTF8AndSize(name, &size);
        if (paths[i] == NULL)
            goto failed;
        if (strlen(paths[i]) != (size_t)size) {
            PyErr_SetString(PyExc_ValueError, "file name holds a NUL character");
            goto failed;
        }
    }
    return paths;
failed:
    PyMem_Free(paths);
    return NULL;
}

/* After a loop over `names`: None, or OSError naming the file at `failed_at` (-1 when
 * none failed) with `error`, its errno. Frees `paths`. */
static PyObject *files_done(const char **paths, PyObject *names, Py_ssize_t failed_at, int error)
{
    PyMem_Free(paths);
    if (failed_at < 0)
        Py_RETURN_NONE;
    errno = error;
    return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, PyList_GET_ITEM(names, failed_at));
}

static PyObject *write_files(PyObject *module, PyObject *args)
{
    int folder, mode;
    PyObject *names, *contents;
    (void)module;
    if (!PyArg_ParseTuple(args, "iO!O!i", &folder, &PyList_Type, &names, &PyList_Type,
                          &contents, &mode))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(names);
    if (PyList_GET_SIZE(contents) != count) {
        PyErr_SetString(PyExc_ValueError, "need one content per file name");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyBytes_Check(PyList_GET_ITEM(contents, i))) {
            PyErr_Format(PyExc_TypeError, "content %zd is not bytes", i);
            return NULL;
        }
    }
    const char **paths = utf8_names(names);
    if (paths == NULL)
        return NULL;
    /* The lists are not changed while the GIL is released: this call holds them, and
     * the caller is the only thread that has them. */
    Py_ssize_t failed_at = -1;
    int error = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count && failed_at < 0; i++) {
        PyObject *content = PyList_GET_ITEM(contents, i);
        const char *data = PyBytes_AS_STRING(content);
        Py_ssize_t left = PyBytes_GET_SIZE(content);
        int fd = openat(folder, paths[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0) {
            error = errno;
            failed_at = i;
            break;
        }
        /* The mode exactly: openat's passes through the umask, and a file a killed run
         * left behind keeps its old mode through O_TRUNC. */
        if (fchmod(fd, mode) < 0) {
            error = errno;
            failed_at = i;
            close(fd);
            break;
        }
        while (left > 0) {
            ssize_t written = write(fd, data, left);
            if (written < 0) {
                if (errno == EINTR)
                    continue;
                error = errno;
                failed_at = i;
                break;
            }
            data += written;
            left -= written;
        }
        if (close(fd) < 0 && failed_at < 0) {
            error = errno;
            failed_at = i;
        }
    }
    Py_END_ALLOW_THREADS
    return files_done(paths, names, failed_at, error);
}

static PyObject *rename_files(PyObject *module, PyObject *args)
{
    int source, target;
    PyObject *names;
    (void)module;
    if (!PyArg_ParseTuple(args, "iiO!", &source, &target, &PyList_Type, &names))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(names);
    const char **paths = utf8_names(names);
    if (paths == NULL)
        return NULL;
    Py_ssize_t failed_at = -1;
    int error = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        if (renameat(source, paths[i], target, paths[i]) < 0) {
            error = errno;
            failed_at = i;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    return files_done(paths, names, failed_at, error);
}

/* ---- A batch's full documents, as issuer.encoder.FullDocumentWriter writes them ----
 *
 * documents(head, fields, secrets, anchor, levels) -> list of bytes
 *   head     the document up to its fields' members
 *   fields   each licence's field members (encode's second list)
 *   secrets  bytes, 16 per licence
 *   anchor   what follows the secret, up to the proof
 *   levels   the batch's Merkle tree, leaves first, root last (16-byte nodes)
 * Each document is head, fields, the secret in hex, anchor, the proof (each sibling from
 * the leaf up, as "0x..." in a JSON list) and its end: FullDocumentWriter.write with
 * proof_texts, whose bytes tests compare with these.
 */
static PyObject *documents(PyObject *module, PyObject *args)
{
    static const char secret_key[] = "},\"secret\":\"0x";
    static const char end[] = "}}\n";
    PyObject *fields, *levels_object;
    Py_buffer head, secrets, anchor;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*O!y*y*O", &head, &PyList_Type, &fields, &secrets, &anchor,
                          &levels_object))
        return NULL;
    PyObject *result = NULL, *out = NULL, *levels = NULL;
    PyObject **level_items = NULL;
    Py_ssize_t *level_sizes = NULL;
    Py_ssize_t count = PyList_GET_SIZE(fields), depth = 0;
    if (secrets.len != count * SECRET_BYTES) {
        PyErr_SetString(PyExc_ValueError, "need 16 bytes of secret per licence");
        goto done;
    }
    levels = PySequence_Tuple(levels_object);
    if (levels == NULL)
        goto done;
    depth = PyTuple_GET_SIZE(levels) - 1; /* the root's level has no siblings */
    if (depth < 0 || (level_items = PyMem_Calloc(depth + 1, sizeof(PyObject *))) == NULL ||
        (level_sizes = PyMem_Calloc(depth + 1, sizeof(Py_ssize_t))) == NULL) {
        if (depth < 0)
            PyErr_SetString(PyExc_ValueError, "a tree has at least its root's level");
        else
            PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t level = 0; level < depth; level++) {
        level_items[level] = PySequence_Tuple(PyTuple_GET_ITEM(levels, level));
        if (level_items[level] == NULL)
            goto done;
        level_sizes[level] = PyTuple_GET_SIZE(level_items[level]);
        for (Py_ssize_t k = 0; k < level_sizes[level]; k++) {
            PyObject *node = PyTuple_GET_ITEM(level_items[level], k);
            if (!PyBytes_Check(node) || PyBytes_GET_SIZE(node) != DIGEST_BYTES) {
                PyErr_SetString(PyExc_ValueError, "tree nodes must be 16 bytes");
                goto done;
            }
        }
    }
    if ((depth > 0 && level_sizes[0] != count) || (depth == 0 && count != 1)) {
        PyErr_SetString(PyExc_ValueError, "the tree's leaves must be the licences");
        goto done;
    }
    out = PyList_New(count);
    if (out == NULL)
        goto done;
    const unsigned char *secret_bytes = secrets.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *member = PyList_GET_ITEM(fields, i);
        if (!PyBytes_Check(member)) {
            PyErr_Format(PyExc_TypeError, "fields %zd are not bytes", i);
            goto done;
        }
        Py_ssize_t siblings = 0;
        for (Py_ssize_t level = 0, at = i; level < depth; level++, at >>= 1)
            siblings += (at ^ 1) < level_sizes[level];
        Py_ssize_t size = head.len + PyBytes_GET_SIZE(member) + (Py_ssize_t)strlen(secret_key) +
                          2 * SECRET_BYTES + anchor.len + 2 + siblings * (4 + 2 * DIGEST_BYTES) +
                          (siblings ? siblings - 1 : 0) + (Py_ssize_t)strlen(end);
        PyObject *document = PyBytes_FromStringAndSize(NULL, size);
        if (document == NULL)
            goto done;
        char *at = PyBytes_AS_STRING(document);
#define APPEND(source, length)                                                                \
    do {                                                                                      \
        memcpy(at, (source), (length));                                                       \
        at += (length);                                                                       \
    } while (0)
        APPEND(head.buf, head.len);
        APPEND(PyBytes_AS_STRING(member), PyBytes_GET_SIZE(member));
        APPEND(secret_key, strlen(secret_key));
        put_hex(at, secret_bytes + i * SECRET_BYTES, SECRET_BYTES);
        at += 2 * SECRET_BYTES;
        APPEND(anchor.buf, anchor.len);
        *at++ = '[';
        int first = 1;
        for (Py_ssize_t level = 0, index = i; level < depth; level++, index >>= 1) {
            Py_ssize_t sibling = index ^ 1;
            if (sibling >= level_sizes[level])
                continue;
            if (!first)
                *at++ = ',';
            first = 0;
            APPEND("\"0x", 3);
            put_hex(at,
                    (const unsigned char *)PyBytes_AS_STRING(
                        PyTuple_GET_ITEM(level_items[level], sibling)),
                    DIGEST_BYTES);
            at += 2 * DIGEST_BYTES;
            *at++ = '"';
        }
        *at++ = ']';
        APPEND(end, strlen(end));
#undef APPEND
        PyList_SET_ITEM(out, i, document);
    }
    result = out;
    out = NULL;

done:
    PyBuffer_Release(&head);
    PyBuffer_Release(&secrets);
    PyBuffer_Release(&anchor);
    Py_XDECREF(out);
    if (level_items != NULL)
        for (Py_ssize_t level = 0; level < depth; level++)
            Py_XDECREF(level_items[level]);
    PyMem_Free(level_items);
    PyMem_Free(level_sizes);
    Py_XDECREF(levels);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS,
     "encode(rows, secrets, plan) -> (licence ids, document field members); see "
     "issuer.encoder.LicenceIds.encode."},
    {"check", check, METH_VARARGS,
     "check(rows, plan) -> indexes of rows not plainly valid; see issuer.validation.RowsCheck."},
    {"record_bounds", record_bounds, METH_VARARGS,
     "record_bounds(data, start, every) -> (ends, records), or None; see issuer.spreadsheet."},
    {"write_files", write_files, METH_VARARGS,
     "write_files(folder, names, contents, mode): create and write files (folder: a dir fd)."},
    {"rename_files", rename_files, METH_VARARGS,
     "rename_files(source, target, names): move files between folders (dir fds)."},
    {"documents", documents, METH_VARARGS,
     "documents(head, fields, secrets, anchor, levels) -> the batch's full documents; see "
     "issuer.encoder.FullDocumentWriter."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "issuer._wrap",
    .m_doc = "Issuing's per-licence work on a batch: hashing and encoding, the row check and "
             "the input digest (licence.digest, licence.fields and issuer.checking have the "
             "definitions).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__wrap(void) { return PyModule_Create(&module); }
