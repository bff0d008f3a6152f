/* Frames of the TypeScript-helper boundary (boundary/helper.proto, docs/boundary.md): a u32
 * little-endian length, then a protobuf message. Reading refuses any field this helper was not
 * built to know, so a plan from another version is never half carried out. */
#include "helper.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FRAME_MAX (64u * 1024u * 1024u)

/* The first unknown field below msg (protobuf-c keeps them instead of failing), as
 * "Message.field_number" in buf; false when there is none. */
static bool find_unknown(const ProtobufCMessage *msg, char *buf, size_t len)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;

	if (msg->n_unknown_fields > 0) {
		snprintf(buf, len, "%s field %u", d->short_name, msg->unknown_fields[0].tag);
		return true;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)msg;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
			for (size_t k = 0; k < n; k++)
				if (find_unknown(items[k], buf, len))
					return true;
		} else {
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
				if (which != f->id)
					continue;
			}
			const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
			if (sub && find_unknown(sub, buf, len))
				return true;
		}
	}
	return false;
}

Tsrun__ToHelper *frame_read(int fd)
{
	uint32_t len;
	uint8_t *buf;
	char unknown[128];
	int r = read_all(fd, &len, sizeof(len));

	if (r == -2)
		return NULL;
	if (r < 0)
		die(ERR(READ_FRAME), errno, NULL, 0);
	if (len > FRAME_MAX)
		die(ERR(FRAME_TOO_LONG), 0, NULL, len);
	buf = malloc(len ? len : 1);
	if (!buf)
		die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, len);
	r = read_all(fd, buf, len);
	if (r < 0)
		die(ERR(READ_FRAME), r == -2 ? 0 : errno, NULL, len);
	Tsrun__ToHelper *m = tsrun__to_helper__unpack(NULL, len, buf);
	free(buf);
	if (!m)
		die(ERR(BAD_FRAME), 0, NULL, len);
	if (find_unknown(&m->base, unknown, sizeof(unknown)))
		die_detail(ERR(UNKNOWN_FIELD), 0, NULL, 0, unknown);
	return m;
}

/* One frame in one write: lines of a child and its parent never interleave. */
int frame_write(int fd, const Tsrun__FromHelper *ev)
{
	size_t n = tsrun__from_helper__get_packed_size(ev);
	uint8_t stackbuf[8192], *buf = n + 4 <= sizeof(stackbuf) ? stackbuf : malloc(n + 4);
	uint32_t len = (uint32_t)n;
	int r;

	if (!buf)
		return -1;
	memcpy(buf, &len, 4);
	tsrun__from_helper__pack(ev, buf + 4);
	r = write_all(fd, buf, n + 4);
	if (buf != stackbuf)
		free(buf);
	return r;
}
